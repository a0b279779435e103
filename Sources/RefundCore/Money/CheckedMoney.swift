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
