/// The contract's one allocation rule (section 1), used for every proportional split: tenders, cancellation
/// fees, tax.
///
/// To split `A` over weights `w_1..w_n` (all ≥ 0, `W = Σw > 0`): `share_i = floor(A·w_i / W)` computed exactly
/// with a 128-bit intermediate; the `A − Σshare_i` leftover units go one each to the indices with the largest
/// remainders `(A·w_i) mod W`, ties to the lower index. `W = 0` is valid only for `A = 0`. The shares always sum
/// to exactly `A`.
public enum Allocation {
    /// Splits `amount` over `weights`. Throws `invalid_amount` for a negative amount or weight, for `W = 0`
    /// with a non-zero amount, and `amount_overflow` when the weights sum past `Int64.max`.
    public static func split(_ amount: Int64, by weights: [Int64]) throws(RefundError) -> [Int64] {
        guard amount >= 0 else { throw RefundError(.invalidAmount, "allocation amount \(amount) is negative") }
        var total: Int64 = 0
        for weight in weights {
            guard weight >= 0 else { throw RefundError(.invalidAmount, "allocation weight \(weight) is negative") }
            let (next, overflow) = total.addingReportingOverflow(weight)
            if overflow { throw RefundError(.amountOverflow, "the allocation weights overflow a 64-bit sum") }
            total = next
        }
        if total == 0 {
            guard amount == 0 else {
                throw RefundError(.invalidAmount, "cannot split \(amount) over weights that sum to zero")
            }
            return [Int64](repeating: 0, count: weights.count)
        }
        return splitUnchecked(amount, by: weights, total: total)
    }

    /// The rule itself, for callers that already validated `amount ≥ 0`, every weight ≥ 0 and `total = Σw > 0`
    /// without overflow. Hot path: one pass, no sorting; the leftover (< n units) is handed out by repeated
    /// selection of the largest remainder, which for the small n of tenders and lines beats sorting.
    @inlinable
    public static func splitUnchecked(_ amount: Int64, by weights: [Int64], total: Int64) -> [Int64] {
        let n = weights.count
        if n == 1 { return [amount] }
        let a = UInt64(amount)
        let w = UInt64(total)
        var shares = [Int64](repeating: 0, count: n)
        var remainders = [UInt64](repeating: 0, count: n)
        var assigned: UInt64 = 0
        for i in 0..<n {
            let product = a.multipliedFullWidth(by: UInt64(weights[i]))
            // weights[i] ≤ total, so the quotient ≤ amount and fits in 64 bits.
            let (quotient, remainder) = w.dividingFullWidth(product)
            shares[i] = Int64(quotient)
            remainders[i] = remainder
            assigned &+= quotient
        }
        // leftover = Σremainder / W < n, and since every remainder < W at least leftover + 1 remainders are
        // non-zero: a unit never goes to a zero remainder, and clearing a chosen remainder to 0 takes it out.
        var leftover = a &- assigned
        while leftover > 0 {
            var best = 0
            for i in 1..<n where remainders[i] > remainders[best] { best = i }  // strict: ties to the lower index
            shares[best] &+= 1
            remainders[best] = 0
            leftover &-= 1
        }
        return shares
    }

    /// The rule for exactly two weights `(a, b)` with `a + b > 0`, without allocating: the per-line tax split
    /// over (refunded, retained) runs once per refunded line.
    @inlinable
    public static func splitTwo(_ amount: Int64, _ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let total = UInt64(a) &+ UInt64(b)
        let (q0, r0) = total.dividingFullWidth(UInt64(amount).multipliedFullWidth(by: UInt64(a)))
        let (q1, r1) = total.dividingFullWidth(UInt64(amount).multipliedFullWidth(by: UInt64(b)))
        var first = Int64(q0)
        var second = Int64(q1)
        if first &+ second < amount {
            // One unit left over: to the larger remainder, ties to the lower index.
            if r1 > r0 { second &+= 1 } else { first &+= 1 }
        }
        return (first, second)
    }
}
