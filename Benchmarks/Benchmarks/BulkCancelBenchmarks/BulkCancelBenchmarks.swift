import Benchmark
import RefundCore
import RefundEngine

#if canImport(Glibc)
    import Glibc
#endif

// `runBulkCancellation` of an event of 100,000 synthetic orders on an engine with one partition per active core and
// a simulated gateway that answers at once. Each iteration builds a fresh engine outside the measured section; only
// the cancellation is measured.
//
// Custom metrics:
// - `ordersPerSecond`: orders cancelled per second of the measured cancellation.
// - `bytesPerOrder`: resident memory (from /proc/self/statm) after the cancellation minus before loading the orders,
//   divided by the order count, with the engine still alive (orders, refunds, outbox events, job state). Free heap is
//   returned to the system (`malloc_trim`) before both readings so that earlier iterations and transient buffers do
//   not count.
let benchmarks: @Sendable () -> Void = {
    let orderCount = 100_000
    let event = SyntheticEvent(event: "evt_b", orders: orderCount)
    let request = BulkCancelRequest(
        events: [event.event],
        options: RefundOptions(
            method: .original, fee: .order(200), reason: "event_cancelled", emailText: "The show is off."))
    let caller = Caller.staff("bench")

    Benchmark(
        "BulkCancel100k",
        configuration: .init(
            metrics: [
                .wallClock, .peakMemoryResident, .mallocCountTotal, BulkMetrics.ordersPerSecond,
                BulkMetrics.bytesPerOrder,
            ],
            warmupIterations: 1,
            scalingFactor: .one,
            maxDuration: .seconds(60),
            maxIterations: 5,
            // Static p90 thresholds (Thresholds/) hold only malloc counts: the one stable metric on shared machines.
            thresholds: [.mallocCountTotal: .init(relative: [.p90: 2.0])]
        )
    ) { benchmark in
        let residentBefore = Resident.bytesAfterTrim()
        let engine = Engine(
            configuration: EngineConfiguration(partitions: EngineConfiguration.activeProcessorCount),
            gateway: SimulatedGateway())
        let rejected = await engine.putOrders(event.allOrders())
        guard rejected.isEmpty else {
            benchmark.error("\(rejected.count) synthetic orders rejected: \(rejected[0].error)")
            return
        }
        let clock = ContinuousClock()

        benchmark.startMeasurement()
        let start = clock.now
        let status = try await engine.runBulkCancellation(request, caller: caller)
        let elapsed = clock.now - start
        benchmark.stopMeasurement()

        guard status.processed == orderCount, status.succeeded == orderCount else {
            benchmark.error(
                "bulk cancellation processed \(status.processed), succeeded \(status.succeeded) of \(orderCount)")
            return
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        benchmark.measurement(BulkMetrics.ordersPerSecond, Int(Double(orderCount) / max(seconds, 1e-9)))
        let residentAfter = Resident.bytesAfterTrim()
        benchmark.measurement(BulkMetrics.bytesPerOrder, max(0, residentAfter - residentBefore) / orderCount)
        withExtendedLifetime(engine) {}
        engine.shutdown()
    }
}

enum BulkMetrics {
    static let ordersPerSecond = BenchmarkMetric.custom(
        "ordersPerSecond", polarity: .prefersLarger, useScalingFactor: false)
    static let bytesPerOrder = BenchmarkMetric.custom(
        "bytesPerOrder", polarity: .prefersSmaller, useScalingFactor: false)
}

/// Resident set size of this process, read from /proc/self/statm (Linux; 0 elsewhere).
enum Resident {
    static func bytesAfterTrim() -> Int {
        #if canImport(Glibc)
            // glibc's malloc_trim (in <malloc.h>, which the Glibc module does not export).
            if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {  // RTLD_DEFAULT
                typealias MallocTrim = @convention(c) (Int) -> Int32
                _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
            }
        #endif
        return bytes()
    }

    static func bytes() -> Int {
        #if os(Linux)
            let fd = open("/proc/self/statm", O_RDONLY)
            guard fd >= 0 else { return 0 }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return 0 }
            // "size resident shared text lib data dt", in pages.
            let fields = buffer[..<count].split(separator: UInt8(ascii: " "))
            guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
            return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
            return 0
        #endif
    }
}
