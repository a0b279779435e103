import Benchmark
import RefundCore

// `Allocation.split`, the proportional split behind every tender, fee and tax allocation. Micro-benchmarks: each
// iteration runs 1,000 splits (scalingFactor .kilo), so times and malloc counts are shown per split.
let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
    )

    // Two tenders, e.g. a card and a wallet part of one order.
    Benchmark("AllocationSplit2", configuration: configuration) { benchmark in
        let weights: [Int64] = [3_000, 1_701]
        for _ in benchmark.scaledIterations {
            blackHole(try? Allocation.split(4_135, by: identity(weights)))
        }
    }

    // Six lines, the most a synthetic order has.
    Benchmark("AllocationSplit6", configuration: configuration) { benchmark in
        let weights: [Int64] = [1_500, 2_250, 4_000, 1_750, 9_999, 3_333]
        for _ in benchmark.scaledIterations {
            blackHole(try? Allocation.split(4_135, by: identity(weights)))
        }
    }
}
