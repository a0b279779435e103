/// Whole units of a `Duration`, for metrics and log fields (one conversion, instead of one per caller).
extension Duration {
    /// Whole nanoseconds, clamped to `Int64` (a duration over 292 years reads as the maximum).
    public var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (sum, carry) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return carry ? (seconds < 0 ? .min : .max) : sum
    }

    /// Whole milliseconds.
    public var wholeMilliseconds: Int64 { wholeNanoseconds / 1_000_000 }

    /// Seconds as a `Double` (a gauge's value; never money).
    public var seconds: Double { Double(wholeNanoseconds) / 1e9 }
}
