// swift-tools-version: 6.1
// Benchmarks for RefundEngine, kept in their own package (as swift-nio and swift-log do) so that `swift build` and
// `swift test` of the main package never build package-benchmark and its dependencies.
//
// Run from this directory: `swift package benchmark` (or `tools/bench.sh` from the repository root).
import PackageDescription

let benchmarkTargets: [(name: String, dependencies: [Target.Dependency])] = [
    ("AllocationBenchmarks", [.product(name: "RefundCore", package: "RefundEngine")]),
    (
        "OneRefundBenchmarks",
        [
            .product(name: "RefundEngine", package: "RefundEngine"),
            .product(name: "RefundCore", package: "RefundEngine"),
        ]
    ),
    (
        "DurableBenchmarks",
        [
            .product(name: "RefundEngine", package: "RefundEngine"),
            .product(name: "RefundCore", package: "RefundEngine"),
            .product(name: "RefundStorage", package: "RefundEngine"),
        ]
    ),
    (
        "MillionBenchmarks",
        [
            .product(name: "RefundEngine", package: "RefundEngine"),
            .product(name: "RefundCore", package: "RefundEngine"),
            .product(name: "RefundStorage", package: "RefundEngine"),
        ]
    ),
    (
        "BulkCancelBenchmarks",
        [
            .product(name: "RefundEngine", package: "RefundEngine"),
            .product(name: "RefundCore", package: "RefundEngine"),
        ]
    ),
]

let package = Package(
    name: "RefundEngineBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The parent package, named explicitly so the product references do not depend on the checkout's folder name.
        .package(name: "RefundEngine", path: "../"),
        // package-benchmark resolves here only with the MallocInterposer trait selected (this also leaves out its
        // RuntimeInterposer default trait, so ARC metrics are not available; malloc counts are).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: benchmarkTargets.map { target in
        .executableTarget(
            name: target.name,
            dependencies: [.product(name: "Benchmark", package: "benchmark")] + target.dependencies,
            path: "Benchmarks/\(target.name)",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    }
)
