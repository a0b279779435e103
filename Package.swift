// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "RefundEngine",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RefundEngine", targets: ["RefundEngine"]),
        .library(name: "RefundCore", targets: ["RefundCore"]),
        .library(name: "RefundStorage", targets: ["RefundStorage"]),
        .executable(name: "refund-demo", targets: ["refund-demo"]),
        .library(name: "RefundServer", targets: ["RefundServer"]),
        .executable(name: "refundd", targets: ["refundd"]),
        .executable(name: "refundctl", targets: ["refundctl"]),
    ],
    dependencies: [
        // PropertyBased: the property-based tests of RefundCoreTests (allocation, refund sequences, timestamps).
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        // NIOCore, NIOPosix: RefundServer's TCP and Unix-socket listeners, line framing and connections.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        // ArgumentParser: the command lines of refundd and refundctl (flags, subcommands, --help, --version).
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        // Logging: fail-stops, repairs and snapshots in RefundEngine, the server's log, refundd's log handler.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        // ServiceLifecycle: refundd's graceful shutdown on SIGTERM / SIGINT.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        // CoreMetrics: the engine's, the logs' and the server's metrics (handles only; no backend in a library).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.1"),
        // Prometheus: refundd's metrics backend, served as Prometheus text on --metrics-port.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        // Histogram: refundctl bench's latency percentiles (HdrHistogram).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        // The generate-documentation command for the DocC catalogs of RefundEngine and RefundCore (no code linked).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // liblz4 from Debian's liblz4-dev, wrapped as a system library.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // Pure core: money, allocation, model, rules, change values and their binary codec. No I/O, no concurrency.
        .target(name: "RefundCore", swiftSettings: strict),
        // Storage: bytes in, bytes out. WAL segments, blocks, checksums, LZ4, snapshots, the file seam.
        .target(
            name: "RefundStorage",
            dependencies: ["CLZ4", "RefundCore", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict),
        // The engine: partitions (actors), commands, gateway, bulk jobs, the public embedding API.
        .target(
            name: "RefundEngine",
            dependencies: [
                "RefundCore", "RefundStorage", .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "refund-demo", dependencies: ["RefundEngine"], swiftSettings: strict),
        // The socket face: the line-delimited JSON protocol over TCP / Unix sockets (SwiftNIO).
        .target(
            name: "RefundServer",
            dependencies: [
                "RefundEngine", "RefundCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        // The daemon: flags and environment, the engine, the server, graceful shutdown.
        .executableTarget(
            name: "refundd",
            dependencies: [
                "RefundServer", "RefundEngine", "RefundCore", "RefundStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        // The CLI: every protocol op as a subcommand, import, cancel-event, the data-directory inspector, bench.
        // It speaks the protocol with the server's own JSON (`RefundServer/JSON`): one parser, one escaping.
        .executableTarget(
            name: "refundctl",
            dependencies: [
                "RefundEngine", "RefundCore", "RefundServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict),
        // The subject of the kill -9 crash tests (Tests/RefundEngineTests/CrashTests.swift).
        .executableTarget(name: "refund-crashtest", dependencies: ["RefundEngine"], swiftSettings: strict),
        .testTarget(
            name: "RefundCoreTests",
            dependencies: ["RefundCore", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict),
        .testTarget(
            name: "RefundStorageTests", dependencies: ["RefundStorage", "RefundCore"], swiftSettings: strict),
        .testTarget(
            name: "RefundEngineTests",
            dependencies: [
                "RefundEngine", "RefundCore", "RefundStorage", "refund-crashtest",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Starts the real refundd for the tests that talk to it over a socket.
        .target(name: "DaemonTestSupport", path: "Tests/DaemonTestSupport", swiftSettings: strict),
        .testTarget(
            name: "RefundServerTests",
            dependencies: [
                "RefundServer", "RefundCore", "RefundEngine", "RefundStorage", "refundd", "DaemonTestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "RefundctlTests", dependencies: ["refundctl", "refundd", "DaemonTestSupport"], swiftSettings: strict),
    ]
)
