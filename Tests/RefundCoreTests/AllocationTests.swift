import Testing

@testable import RefundCore

/// The allocation rule of contract section 1, by example.
@Suite struct AllocationTests {
    @Test func contractTenderExample() throws {
        // Section 3: 4135 over the remaining 3000 / 1884.
        #expect(try Allocation.split(4135, by: [3000, 1884]) == [2540, 1595])
    }

    @Test func contractTaxExample() throws {
        // Section 3: tax 750 over (refunded 4135, retained 500); the first share is refunded.
        let shares = try Allocation.split(750, by: [4135, 500])
        #expect(shares == [669, 81])
    }

    @Test func exactSplitsHaveNoLeftover() throws {
        #expect(try Allocation.split(100, by: [60, 40]) == [60, 40])
        #expect(try Allocation.split(500, by: [1000, 2000, 3000, 1500, 2500]) == [50, 100, 150, 75, 125])
        #expect(try Allocation.split(7, by: [5]) == [7])
    }

    @Test func tiesGoToTheLowerIndex() throws {
        #expect(try Allocation.split(1, by: [1, 1, 1]) == [1, 0, 0])
        #expect(try Allocation.split(2, by: [1, 1, 1]) == [1, 1, 0])
        #expect(try Allocation.split(5, by: [3, 3]) == [3, 2])
        // Equal remainders on unequal weights: still the lower index.
        #expect(try Allocation.split(1, by: [2, 0, 2]) == [1, 0, 0])
    }

    @Test func leftoverGoesToTheLargestRemainder() throws {
        // 10·1/6 = 1 r4, 10·2/6 = 3 r2, 10·3/6 = 5 r0: one leftover unit, to index 0 (remainder 4).
        #expect(try Allocation.split(10, by: [1, 2, 3]) == [2, 3, 5])
        // 100 over 3 equal: 33 r1 each; one unit to index 0.
        #expect(try Allocation.split(100, by: [1, 1, 1]) == [34, 33, 33])
        // Largest remainder is the last index.
        #expect(try Allocation.split(3, by: [1, 1, 4]) == [1, 0, 2])
    }

    @Test func zeroWeightGetsNothing() throws {
        #expect(try Allocation.split(1001, by: [0, 3, 0, 7]) == [0, 300, 0, 701])
        #expect(try Allocation.split(9, by: [0, 0, 1]) == [0, 0, 9])
    }

    @Test func zeroTotalWeightIsValidOnlyForZeroAmount() throws {
        #expect(try Allocation.split(0, by: [0, 0, 0]) == [0, 0, 0])
        #expect(try Allocation.split(0, by: []) == [])
        let error = try #require(refundError { _ = try Allocation.split(1, by: [0, 0]) })
        #expect(error.code == .invalidAmount)
        #expect(error.message.contains("zero"))
        let empty = try #require(refundError { _ = try Allocation.split(5, by: []) })
        #expect(empty.code == .invalidAmount)
    }

    @Test func zeroAmountIsAllZeros() throws {
        #expect(try Allocation.split(0, by: [3, 5, 9]) == [0, 0, 0])
    }

    @Test func negativeAmountIsInvalid() throws {
        let error = try #require(refundError { _ = try Allocation.split(-1, by: [1, 2]) })
        #expect(error.code == .invalidAmount)
        #expect(error.message.contains("negative"))
    }

    @Test func negativeWeightIsInvalid() throws {
        let error = try #require(refundError { _ = try Allocation.split(10, by: [5, -1, 6]) })
        #expect(error.code == .invalidAmount)
        #expect(error.message.contains("weight"))
        // Negative even when the sum would be positive and the amount zero.
        #expect(refundError { _ = try Allocation.split(0, by: [5, -1]) }?.code == .invalidAmount)
    }

    @Test func overflowingWeightsAreAnError() throws {
        let error = try #require(refundError { _ = try Allocation.split(10, by: [Int64.max, 1]) })
        #expect(error.code == .amountOverflow)
        #expect(error.message.contains("weights"))
        #expect(refundError { _ = try Allocation.split(0, by: [Int64.max / 2 + 1, Int64.max / 2 + 1]) }?.code == .amountOverflow)
        // Exactly Int64.max is fine.
        #expect(try Allocation.split(10, by: [Int64.max - 1, 1]) == [10, 0])
    }

    @Test func hugeAmountsUseExact128BitArithmetic() throws {
        let max = Int64.max
        #expect(try Allocation.split(max, by: [max]) == [max])
        #expect(try Allocation.split(max, by: [max - 1, 1]) == [max - 1, 1])
        #expect(try Allocation.split(max, by: [1, max - 1]) == [1, max - 1])
        // max = 2^63 − 1 over two equal huge weights: (2^63 − 1)/2 = 2^62 − 1 r1 each side → one unit to index 0.
        let half = max / 2
        #expect(try Allocation.split(max, by: [half, half]) == [half + 1, half])
        // A·w overflows 64 bits by far; the exact quotient still fits.
        let shares = try Allocation.split(max, by: [max / 3, max / 3, max / 3])
        #expect(shares.reduce(0, +) == max)
        #expect(shares.allSatisfy { $0 == max / 3 || $0 == max / 3 + 1 })
        let big = try Allocation.split(1_000_000_000_000_000_000, by: [7_000_000_000_000_000_000, 3, 2_000_000_000_000_000_000])
        #expect(big.reduce(0, +) == 1_000_000_000_000_000_000)
        #expect(big[1] == 0)
    }
}
