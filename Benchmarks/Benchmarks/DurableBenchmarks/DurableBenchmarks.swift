import Benchmark
import Foundation
import RefundCore
import RefundEngine
import RefundStorage

// The durable engine (issue 3): bulk cancellation with fsync=always from a snapshot, log bytes per refund,
// recovery, snapshot write time. 100,000 orders per iteration so that a run fits a few minutes on two cores;
// the demo (`refund-demo 1000000`) gives the million-order figures.
//
// Custom metrics:
// - `ordersPerSecond`: orders cancelled per second of the measured cancellation.
// - `logBytesPerRefund`: bytes the partition logs grew by during the cancellation, per refund (both records of
//   a card refund: the refund and the gateway's answer; LZ4-compressed blocks with their frames).
let benchmarks: @Sendable () -> Void = {
    let orderCount = 100_000
    let event = SyntheticEvent(event: "evt_d", orders: orderCount)
    let request = BulkCancelRequest(
        events: [event.event], options: RefundOptions(method: .original, fee: .order(200), reason: "event_cancelled"))
    let caller = Caller.staff("bench")
    let configuration = EngineConfiguration(partitions: EngineConfiguration.activeProcessorCount)

    Benchmark(
        "DurableBulkCancel100k",
        configuration: .init(
            metrics: [.wallClock, DurableMetrics.ordersPerSecond, DurableMetrics.logBytesPerRefund],
            warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(90), maxIterations: 4)
    ) { benchmark in
        let directory = Scratch.directory("bulk")
        defer { Scratch.remove(directory) }
        let engine = try await Engine.open(
            configuration: configuration,
            durability: DurabilityOptions(directory: directory, fsync: .always, snapshotEveryRecords: 0))
        _ = await engine.putOrders(event.allOrders())
        try await engine.snapshot()
        let logBefore = Scratch.bytes(under: directory, suffix: ".log")
        let clock = ContinuousClock()

        benchmark.startMeasurement()
        let start = clock.now
        let status = try await engine.runBulkCancellation(request, caller: caller)
        let elapsed = clock.now - start
        benchmark.stopMeasurement()

        guard status.succeeded == orderCount else {
            benchmark.error("succeeded \(status.succeeded) of \(orderCount)")
            return
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        benchmark.measurement(DurableMetrics.ordersPerSecond, Int(Double(orderCount) / max(seconds, 1e-9)))
        let logBytes = Scratch.bytes(under: directory, suffix: ".log") - logBefore
        benchmark.measurement(DurableMetrics.logBytesPerRefund, logBytes / orderCount)
        try await engine.close()
    }

    Benchmark(
        "Snapshot100k",
        configuration: .init(metrics: [.wallClock], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(60), maxIterations: 5)
    ) { benchmark in
        let directory = Scratch.directory("snap")
        defer { Scratch.remove(directory) }
        let engine = try await Engine.open(
            configuration: configuration, durability: DurabilityOptions(directory: directory, snapshotEveryRecords: 0))
        _ = await engine.putOrders(event.allOrders())
        _ = try await engine.runBulkCancellation(request, caller: caller)
        benchmark.startMeasurement()
        try await engine.snapshot()
        benchmark.stopMeasurement()
        try await engine.close()
    }

    Benchmark(
        "Recovery100k",
        configuration: .init(metrics: [.wallClock], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(90), maxIterations: 4)
    ) { benchmark in
        // 100,000 orders, all cancelled: half of the history in the snapshot, half in the log after it.
        let directory = Scratch.directory("recover")
        defer { Scratch.remove(directory) }
        let engine = try await Engine.open(
            configuration: configuration, durability: DurabilityOptions(directory: directory, snapshotEveryRecords: 0))
        _ = await engine.putOrders(event.allOrders())
        try await engine.snapshot()
        _ = try await engine.runBulkCancellation(request, caller: caller)
        engine.shutdown()  // no close: the next open replays the cancellation from the log

        benchmark.startMeasurement()
        let reopened = try await Engine.open(configuration: configuration, durability: DurabilityOptions(directory: directory))
        benchmark.stopMeasurement()
        try await reopened.close()
    }
}

enum DurableMetrics {
    static let ordersPerSecond = BenchmarkMetric.custom("ordersPerSecond", polarity: .prefersLarger, useScalingFactor: false)
    static let logBytesPerRefund = BenchmarkMetric.custom(
        "logBytesPerRefund", polarity: .prefersSmaller, useScalingFactor: false)
}

enum Scratch {
    static func directory(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("refund-bench-\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    static func bytes(under directory: String, suffix: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return 0 }
        var total = 0
        for case let path as String in walker where path.hasSuffix(suffix) {
            total += (try? FileManager.default.attributesOfItem(atPath: directory + "/" + path)[.size] as? Int) ?? 0
        }
        return total
    }
}
