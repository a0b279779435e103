/// Checked arithmetic on minor units. Overflow is an error (`amount_overflow`), never a wrap and never a trap.
public enum CheckedMoney {
    @inlinable
    public static func add(_ a: Int64, _ b: Int64, _ what: @autoclosure () -> String) throws(RefundError) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        if overflow { throw RefundError(.amountOverflow, "\(what()) overflows a 64-bit amount") }
        return sum
    }

    @inlinable
    public static func subtract(_ a: Int64, _ b: Int64, _ what: @autoclosure () -> String) throws(RefundError) -> Int64 {
        let (difference, overflow) = a.subtractingReportingOverflow(b)
        if overflow { throw RefundError(.amountOverflow, "\(what()) overflows a 64-bit amount") }
        return difference
    }

    /// For aggregates across orders (a customer's balance, a bulk job's totals), which no single request can be
    /// refused for: clamps at `Int64.max`/`Int64.min` instead of wrapping. Inputs that would push a customer's
    /// balance past the limit are refused at `order.put` (`amount_overflow`); the clamp only guards what no check
    /// can see (sums over many partitions and many refunds).
    @inlinable
    public static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard overflow else { return sum }
        return b > 0 ? Int64.max : Int64.min
    }

    /// Sums amounts, failing on overflow.
    @inlinable
    public static func sum<S: Sequence>(_ amounts: S, _ what: @autoclosure () -> String) throws(RefundError) -> Int64
    where S.Element == Int64 {
        var total: Int64 = 0
        for amount in amounts {
            let (next, overflow) = total.addingReportingOverflow(amount)
            if overflow { throw RefundError(.amountOverflow, "\(what()) overflows a 64-bit amount") }
            total = next
        }
        return total
    }
}

extension Int64 {
    /// `self = CheckedMoney.saturatingAdd(self, delta)`, in place (dictionary entries without a second lookup).
    @inlinable
    public mutating func addSaturating(_ delta: Int64) { self = CheckedMoney.saturatingAdd(self, delta) }
}
