import Benchmark
import Foundation
import RefundCore
import RefundEngine
import RefundStorage

#if canImport(Glibc)
    import Glibc
#endif

// The million-order figures of issue 11, each its own benchmark so a regression shows by name: loading 1,000,000
// synthetic orders (`putOrders`), cancelling them in bulk in memory and durably (fsync=always), writing a snapshot of
// them all once cancelled, and recovering them (snapshot + the cancellation replayed from the log). One partition
// per active core, the simulated gateway answering at once. Each benchmark runs its setup outside the measured
// section; they take minutes on two cores, so each runs at most 3 iterations (`tools/bench.sh --filter '1M'`).
//
// Two more benchmarks measure what is per order rather than per second, on the same engine shapes:
// - `ResidentPerOrder`: resident memory after cancelling 1M orders in memory, per order (orders, refunds, timeline,
//   outbox), with freed heap returned to the system before both readings.
// - `LogBytesPerRefund`: bytes the partition logs grew by during the durable cancellation of 1M orders, per refund
//   (the refund and its gateway answer, LZ4-compressed, with block frames).
//
// Thresholds (Thresholds/): malloc counts for the timed ones (the one stable metric on shared machines), and the
// per-order figures against issue 11's targets: `logBytesPerRefund` at most 48, `bytesPerOrder` where it stands.
let benchmarks: @Sendable () -> Void = {
    let orderCount = 1_000_000
    let event = SyntheticEvent(event: "evt_m", orders: orderCount)
    let request = BulkCancelRequest(
        events: [event.event],
        options: RefundOptions(method: .original, fee: .order(200), reason: "event_cancelled", emailText: "The show is off."))
    let caller = Caller.staff("bench")
    let configuration = EngineConfiguration(partitions: EngineConfiguration.activeProcessorCount)
    let timed = Benchmark.Configuration(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, Million.ordersPerSecond], warmupIterations: 0,
        scalingFactor: .one, maxDuration: .seconds(120), maxIterations: 3,
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 5.0])])

    /// An engine (durable on `directory`, else in memory) holding the event's orders; nil after reporting a
    /// rejected order.
    @Sendable func loaded(_ directory: String?, fsync: FsyncPolicy, _ benchmark: Benchmark) async throws -> Engine? {
        var engine = Engine(configuration: configuration, gateway: SimulatedGateway())
        if let directory {
            engine = try await Engine.open(
                configuration: configuration, durability: DurabilityOptions(directory: directory, fsync: fsync, snapshotEveryRecords: 0))
        }
        guard await engine.putOrders(event.allOrders()).isEmpty else {
            benchmark.error("orders rejected")
            return nil
        }
        return engine
    }

    /// The bulk cancellation, measured alone, with its orders per second.
    @Sendable func cancelMeasured(_ engine: Engine, _ benchmark: Benchmark) async throws {
        benchmark.startMeasurement()
        let started = ContinuousClock.now
        let status = try await engine.runBulkCancellation(request, caller: caller)
        let elapsed = ContinuousClock.now - started
        benchmark.stopMeasurement()
        guard status.succeeded == orderCount else { return benchmark.error("succeeded \(status.succeeded) of \(orderCount)") }
        benchmark.measurement(Million.ordersPerSecond, Million.perSecond(orderCount, elapsed))
    }

    Benchmark("Load1M", configuration: timed) { benchmark in
        let orders = event.allOrders()
        let engine = Engine(configuration: configuration, gateway: SimulatedGateway())
        benchmark.startMeasurement()
        let started = ContinuousClock.now
        let rejected = await engine.putOrders(orders)
        let elapsed = ContinuousClock.now - started
        benchmark.stopMeasurement()
        guard rejected.isEmpty else { return benchmark.error("\(rejected.count) orders rejected") }
        benchmark.measurement(Million.ordersPerSecond, Million.perSecond(orderCount, elapsed))
        engine.shutdown()
    }

    Benchmark("BulkCancel1M", configuration: timed) { benchmark in
        guard let engine = try await loaded(nil, fsync: .never, benchmark) else { return }
        try await cancelMeasured(engine, benchmark)
        engine.shutdown()
    }

    Benchmark("DurableBulkCancel1M", configuration: timed) { benchmark in
        let directory = Million.scratch("bulk")
        defer { Million.remove(directory) }
        guard let engine = try await loaded(directory, fsync: .always, benchmark) else { return }
        try await engine.snapshot()
        try await cancelMeasured(engine, benchmark)
        engine.kill()
    }

    Benchmark("Snapshot1M", configuration: timed) { benchmark in
        let directory = Million.scratch("snap")
        defer { Million.remove(directory) }
        guard let engine = try await loaded(directory, fsync: .never, benchmark) else { return }
        _ = try await engine.runBulkCancellation(request, caller: caller)
        benchmark.startMeasurement()
        try await engine.snapshot()
        benchmark.stopMeasurement()
        engine.kill()
    }

    Benchmark("Recovery1M", configuration: timed) { benchmark in
        // 1M orders, all cancelled: the orders in the snapshot, the cancellation in the log after it.
        let directory = Million.scratch("recover")
        defer { Million.remove(directory) }
        guard let engine = try await loaded(directory, fsync: .never, benchmark) else { return }
        try await engine.snapshot()
        _ = try await engine.runBulkCancellation(request, caller: caller)
        engine.kill()  // no close: the next open replays the cancellation from the log
        benchmark.startMeasurement()
        let started = ContinuousClock.now
        let reopened = try await Engine.open(configuration: configuration, durability: DurabilityOptions(directory: directory))
        let elapsed = ContinuousClock.now - started
        benchmark.stopMeasurement()
        benchmark.measurement(Million.ordersPerSecond, Million.perSecond(orderCount, elapsed))
        reopened.kill()
    }

    Benchmark(
        "ResidentPerOrder",
        configuration: .init(
            metrics: [Million.bytesPerOrder], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(120),
            maxIterations: 1, thresholds: [Million.bytesPerOrder: .init(relative: [.p90: 10.0])])
    ) { benchmark in
        let before = Million.residentAfterTrim()
        guard let engine = try await loaded(nil, fsync: .never, benchmark) else { return }
        let status = try await engine.runBulkCancellation(request, caller: caller)
        guard status.succeeded == orderCount else { return benchmark.error("succeeded \(status.succeeded) of \(orderCount)") }
        benchmark.measurement(Million.bytesPerOrder, max(0, Million.residentAfterTrim() - before) / orderCount)
        withExtendedLifetime(engine) {}
        engine.shutdown()
    }

    Benchmark(
        "LogBytesPerRefund",
        configuration: .init(
            metrics: [Million.logBytesPerRefund], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(120),
            maxIterations: 1,
            // The stored value is today's 32: more than 16 above it passes issue 11's 48-byte bar.
            thresholds: [Million.logBytesPerRefund: .init(absolute: [.p90: 16])])
    ) { benchmark in
        let directory = Million.scratch("log")
        defer { Million.remove(directory) }
        guard let engine = try await loaded(directory, fsync: .never, benchmark) else { return }
        let before = Million.bytes(under: directory, suffix: ".log")
        let status = try await engine.runBulkCancellation(request, caller: caller)
        guard status.succeeded == orderCount else { return benchmark.error("succeeded \(status.succeeded) of \(orderCount)") }
        benchmark.measurement(Million.logBytesPerRefund, (Million.bytes(under: directory, suffix: ".log") - before) / orderCount)
        engine.kill()
    }
}

enum Million {
    static let ordersPerSecond = BenchmarkMetric.custom("ordersPerSecond", polarity: .prefersLarger, useScalingFactor: false)
    static let bytesPerOrder = BenchmarkMetric.custom("bytesPerOrder", polarity: .prefersSmaller, useScalingFactor: false)
    static let logBytesPerRefund = BenchmarkMetric.custom(
        "logBytesPerRefund", polarity: .prefersSmaller, useScalingFactor: false)

    static func perSecond(_ count: Int, _ elapsed: Duration) -> Int {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Int(Double(count) / max(seconds, 1e-9))
    }

    static func scratch(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("refund-bench-1m-\(name)-\(UUID().uuidString)").path
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

    /// Resident set size after returning freed heap to the system (glibc `malloc_trim`), from /proc/self/statm.
    static func residentAfterTrim() -> Int {
        #if canImport(Glibc)
            if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {  // RTLD_DEFAULT
                typealias MallocTrim = @convention(c) (Int) -> Int32
                _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
            }
        #endif
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
