import PropertyBased
import Testing

@testable import RefundCore

/// An independent implementation of the allocation rule: exact UInt128 products, the leftover handed out by
/// sorting the indices by (remainder descending, index ascending).
enum ReferenceAllocation {
    static func split(_ amount: Int64, by weights: [Int64]) -> [Int64] {
        let total = weights.reduce(UInt128(0)) { $0 + UInt128($1) }
        if total == 0 { return weights.map { _ in 0 } }
        let a = UInt128(amount)
        var shares = weights.map { Int64(a * UInt128($0) / total) }
        let remainders = weights.map { a * UInt128($0) % total }
        let leftover = Int(amount - shares.reduce(0, +))
        let order = weights.indices.sorted { i, j in
            remainders[i] != remainders[j] ? remainders[i] > remainders[j] : i < j
        }
        for i in order.prefix(leftover) { shares[i] += 1 }
        return shares
    }

    /// (floor, remainder) of the exact quotient `amount·weight / total`.
    static func exact(_ amount: Int64, _ weight: Int64, _ total: Int64) -> (floor: Int64, remainder: UInt128) {
        let product = UInt128(amount) * UInt128(weight)
        return (Int64(product / UInt128(total)), product % UInt128(total))
    }
}

/// Weights for the properties: some zeroed by a mask, scaled so that their sum never overflows.
private func weights(_ raw: [Int64], zeroed mask: [Bool]) -> [Int64] {
    raw.enumerated().map { i, w in mask[i % mask.count] ? 0 : w }
}

@Suite struct AllocationPropertyTests {
    static let smallWeights = Gen.int64(in: 0...10_000).array(of: 1...8)
    static let hugeWeights = Gen.int64(in: 0...(Int64.max / 8)).array(of: 1...8)
    static let mask = Gen.bool(0.25).array(of: 8)

    /// Checks every property of one split against the reference.
    private func check(_ amount: Int64, _ w: [Int64], sourceLocation: SourceLocation = #_sourceLocation) {
        let total = w.reduce(0, +)
        guard total > 0 else {
            #expect(refundError { _ = try Allocation.split(max(amount, 1), by: w) }?.code == .invalidAmount,
                sourceLocation: sourceLocation)
            return
        }
        guard let shares = try? Allocation.split(amount, by: w) else {
            Issue.record("split(\(amount), \(w)) threw", sourceLocation: sourceLocation)
            return
        }
        #expect(shares.count == w.count, sourceLocation: sourceLocation)
        #expect(shares.reduce(Int128(0)) { $0 + Int128($1) } == Int128(amount), "sum of \(shares) != \(amount)",
            sourceLocation: sourceLocation)
        for i in w.indices {
            let (floor, _) = ReferenceAllocation.exact(amount, w[i], total)
            #expect(shares[i] >= 0, sourceLocation: sourceLocation)
            #expect(shares[i] == floor || shares[i] == floor + 1, "share \(i) = \(shares[i]), floor \(floor)",
                sourceLocation: sourceLocation)
            if w[i] == 0 { #expect(shares[i] == 0, sourceLocation: sourceLocation) }
        }
        #expect(shares == ReferenceAllocation.split(amount, by: w), "split(\(amount), \(w))", sourceLocation: sourceLocation)
        #expect(Allocation.splitUnchecked(amount, by: w, total: total) == shares, sourceLocation: sourceLocation)
    }

    @Test func smallAmountsAndWeights() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...100_000), Self.smallWeights, Self.mask) { a, raw, mask in
            check(a, weights(raw, zeroed: mask))
        }
    }

    @Test func hugeAmountsAndWeights() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...Int64.max), Self.hugeWeights, Self.mask) { a, raw, mask in
            check(a, weights(raw, zeroed: mask))
        }
    }

    @Test func hugeAmountsOverSmallWeights() async {
        await propertyCheck(count: 200, input: Gen.int64(in: (Int64.max - 1_000)...Int64.max), Self.smallWeights) { a, w in
            check(a, w)
        }
    }

    @Test func manyEqualWeightsExerciseTies() async {
        await propertyCheck(count: 200, input: Gen.int64(in: 0...50), Gen.int64(in: 1...4).array(of: 2...12)) { a, w in
            check(a, w)
        }
    }

    /// Permuting the weights permutes the shares, except that tied remainders favour the lower index — which the
    /// reference reproduces on the permuted input. Where no two non-zero remainders tie, the result is equivariant.
    @Test func permutationStable() async {
        await propertyCheck(
            count: 300, input: Gen.int64(in: 0...1_000_000), Self.smallWeights, Gen.int(in: 0...Int.max)
        ) { a, w, seed in
            guard w.reduce(0, +) > 0 else { return }
            var rng = SplitMix64(seed: UInt64(seed))
            let permutation = Array(w.indices).shuffled(using: &rng)
            let permuted = permutation.map { w[$0] }
            guard let shares = try? Allocation.split(a, by: w), let permutedShares = try? Allocation.split(a, by: permuted)
            else {
                Issue.record("split threw")
                return
            }
            #expect(permutedShares == ReferenceAllocation.split(a, by: permuted))
            let total = w.reduce(0, +)
            let remainders = w.map { ReferenceAllocation.exact(a, $0, total).remainder }
            let nonZero = remainders.filter { $0 != 0 }
            if Set(nonZero).count == nonZero.count {
                #expect(permutedShares == permutation.map { shares[$0] }, "w \(w) perm \(permutation)")
            } else {
                // With ties the multiset of floor+1 units is still the same size.
                #expect(permutedShares.reduce(0, +) == shares.reduce(0, +))
            }
        }
    }
}

/// `Allocation.splitTwo` (the per-line tax split) agrees with the general rule.
@Suite struct AllocationSplitTwoPropertyTests {
    @Test func splitTwoMatchesTheGeneralRule() async {
        await propertyCheck(
            count: 300, input: Gen.int64(in: 0...Int64.max), Gen.int64(in: 0...(Int64.max / 2)),
            Gen.int64(in: 0...(Int64.max / 2))
        ) { amount, a, b in
            guard a + b > 0 else { return }
            let (first, second) = Allocation.splitTwo(amount, a, b)
            #expect([first, second] == ReferenceAllocation.split(amount, by: [a, b]), "\(amount) over \(a), \(b)")
        }
    }

    @Test func splitTwoSmall() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...10_000), Gen.int64(in: 0...100), Gen.int64(in: 0...100)) {
            amount, a, b in
            guard a + b > 0 else { return }
            let (first, second) = Allocation.splitTwo(amount, a, b)
            #expect([first, second] == ReferenceAllocation.split(amount, by: [a, b]), "\(amount) over \(a), \(b)")
        }
    }

    @Test func splitTwoExamples() {
        #expect(Allocation.splitTwo(750, 4135, 500) == (669, 81))
        #expect(Allocation.splitTwo(5, 1, 1) == (3, 2))
        #expect(Allocation.splitTwo(7, 0, 3) == (0, 7))
        #expect(Allocation.splitTwo(Int64.max, Int64.max, 0) == (Int64.max, 0))
    }
}
