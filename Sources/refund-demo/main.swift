import Foundation
import RefundCore
import RefundEngine
import RefundStorage

// The demo: a generated event of orders cancelled in bulk through the Swift API, printing the summary.
//
// Usage: refund-demo [orders] [--partitions N] [--data DIR] [--memory] [--fsync always|never|interval:MS]
//                    [--gateway-rate N] [--provider-limit N] [--kill]
//
// --gateway-rate paces the engine's gateway calls (GatewayLimits); --provider-limit makes the simulated gateway a
// provider that refuses (rate_limited) more than N requests in any second. With either, the demo prints the
// requests sent, the time they took against the time predicted at the rate, and the most the provider saw in one
// second.
//
// By default the engine is durable, on ./refund-demo-data (recreated on each run), with fsync=always: the
// orders are loaded, a snapshot is taken, the event is previewed with a dry run and then cancelled; the demo
// then closes the engine and opens the directory again to time recovery. With --kill it stops the engine the way
// `kill -9` would instead (no snapshot at close), so the recovery it times replays the cancellation from the log.

/// CPU time of the process so far (user + system), in microseconds: steadier than wall time on a busy machine.
func cpuMicroseconds() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + Int(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

/// Resident set size in bytes (second field of /proc/self/statm, in pages).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Bytes of files under `directory` whose name ends with `suffix`.
func bytes(under directory: String, suffix: String) -> Int {
    guard let walker = FileManager.default.enumerator(atPath: directory) else { return 0 }
    var total = 0
    for case let path as String in walker where path.hasSuffix(suffix) {
        total += (try? FileManager.default.attributesOfItem(atPath: directory + "/" + path)[.size] as? Int) ?? 0
    }
    return total
}

func seconds(_ duration: Duration) -> Double {  // timing only, never money
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

var orderCount = 100_000
var partitions = EngineConfiguration.activeProcessorCount
var directory: String? = "./refund-demo-data"
var fsync = FsyncPolicy.always
var gatewayRate: Double?
var providerLimit: Int?
var killBeforeRecovery = false
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let argument = arguments.removeFirst()
    switch argument {
    case "--partitions": partitions = arguments.isEmpty ? 0 : Int(arguments.removeFirst()) ?? 0
    case "--data": directory = arguments.isEmpty ? nil : arguments.removeFirst()
    case "--memory": directory = nil
    case "--gateway-rate":
        guard let value = arguments.isEmpty ? nil : Double(arguments.removeFirst()), value > 0 else {
            fail("--gateway-rate takes requests per second")
        }
        gatewayRate = value
    case "--provider-limit":
        guard let value = arguments.isEmpty ? nil : Int(arguments.removeFirst()), value > 0 else {
            fail("--provider-limit takes requests per second")
        }
        providerLimit = value
    case "--kill": killBeforeRecovery = true
    case "--fsync":
        let value = arguments.isEmpty ? "" : arguments.removeFirst()
        if value == "always" {
            fsync = .always
        } else if value == "never" {
            fsync = .never
        } else if value.hasPrefix("interval:"), let ms = Int(value.dropFirst(9)) {
            fsync = .interval(milliseconds: ms)
        } else {
            fail("--fsync takes always, never or interval:<ms>")
        }
    case "-h", "--help":
        print(
            "usage: refund-demo [orders] [--partitions N] [--data DIR] [--memory] [--fsync always|never|interval:MS] [--gateway-rate N] [--provider-limit N] [--kill]"
        )
        exit(0)
    default:
        guard let count = Int(argument), count > 0 else { fail("unknown argument \(argument); try --help") }
        orderCount = count
    }
}
guard partitions > 0 else { fail("--partitions takes a positive number") }

let clock = ContinuousClock()
let configuration = EngineConfiguration(
    partitions: partitions, gatewayLimits: GatewayLimits(requestsPerSecond: gatewayRate))
let gateway = SimulatedGateway(SimulatedGateway.Configuration(requestsPerSecond: providerLimit))
let event = SyntheticEvent(event: "evt_demo", orders: orderCount)
let engine: Engine
if let directory {
    try? FileManager.default.removeItem(atPath: directory)
    engine = try await Engine.open(
        configuration: configuration,
        durability: DurabilityOptions(directory: directory, fsync: fsync, snapshotEveryRecords: 0), gateway: gateway)
} else {
    engine = Engine(configuration: configuration, gateway: gateway)
}
print("RefundEngine demo: \(orderCount) orders of event \(event.event), \(partitions) partitions, "
    + (directory.map { "data in \($0), fsync \(fsync)" } ?? "in memory"))

let residentBefore = residentBytes()
let orders = event.allOrders()
let loadStart = clock.now
let rejected = await engine.putOrders(orders)
print("loaded \(orderCount - rejected.count) orders in \(clock.now - loadStart) (\(rejected.count) rejected)")
if directory != nil {
    let snapshotStart = clock.now
    try await engine.snapshot()
    print("snapshot of \(orderCount) orders written in \(clock.now - snapshotStart)")
}

let request = BulkCancelRequest(
    events: [event.event],
    options: RefundOptions(method: .original, fee: .order(200), reason: "event_cancelled", emailText: "Sorry, the show is off."))
let caller = Caller.staff("demo")

var dryRun = request
dryRun.dryRun = true
let dry = try await engine.runBulkCancellation(dryRun, caller: caller)
print("dry run: would refund \(dry.succeeded) orders, \(Currency.gbp.format(dry.refunded)), retain \(Currency.gbp.format(dry.feeRetained)); skip \(dry.skipped)")

let logBefore = directory.map { bytes(under: $0, suffix: ".log") } ?? 0
let start = clock.now
let cpuStart = cpuMicroseconds()
let status = try await engine.runBulkCancellation(request, caller: caller)
let elapsed = clock.now - start
let cpu = cpuMicroseconds() - cpuStart
let residentAfter = residentBytes()
let logBytes = (directory.map { bytes(under: $0, suffix: ".log") } ?? 0) - logBefore
print("""

Bulk cancellation \(status.jobID): \(status.state.rawValue)
  orders      \(status.processed)/\(status.total)
  succeeded   \(status.succeeded)
  pending     \(status.pending)
  failed      \(status.failed)
  skipped     \(status.skipped)
  refunded    \(Currency.gbp.format(status.refunded))
  fee kept    \(Currency.gbp.format(status.feeRetained))
  time        \(elapsed) (\(Int(Double(status.processed) / max(seconds(elapsed), 1e-9))) orders/s)
  cpu         \(cpu / 1000) ms (\(cpu * 1000 / max(status.processed, 1)) ns of CPU per order)
  memory      \((residentAfter - residentBefore) / max(orderCount, 1)) bytes resident per order (orders + refunds + outbox)
""")
if directory != nil {
    print("  log         \(logBytes / max(status.succeeded, 1)) bytes per refund (compressed, both records: refund + gateway answer)")
}
if gatewayRate != nil || providerLimit != nil {
    let sent = gateway.requestCount
    let predicted = gatewayRate.map { Double(sent) / $0 }
    print(
        "  gateway     \(sent) requests in \(String(format: "%.2f", seconds(elapsed))) s"
            + (predicted.map { String(format: " (predicted at the rate: %.2f s, %+.1f%%)", $0, (seconds(elapsed) / $0 - 1) * 100) } ?? "")
            + (providerLimit.map { "; the provider (limit \($0)/s) saw at most \(gateway.peakRequestsPerSecond) in one second and refused \(gateway.rateLimitedCount)" } ?? ""))
}
let stats = await engine.statistics()
print("engine: \(stats.orders) orders, \(stats.refunds) refunds, \(stats.outboxEvents) outbox events, per partition \(stats.ordersPerPartition)")

if let directory {
    let hash = await engine.canonicalHash()
    if killBeforeRecovery { engine.kill() } else { try await engine.close() }
    let recoveryStart = clock.now
    let reopened = try await Engine.open(configuration: configuration, durability: DurabilityOptions(directory: directory))
    let recoveryTime = clock.now - recoveryStart
    let same = await reopened.canonicalHash() == hash
    let replayed = reopened.recoverySummary?.recordsReplayed ?? 0
    print(
        "recovery: reopened \(orderCount) orders in \(recoveryTime) (\(replayed) logged commits replayed\(killBeforeRecovery ? ", after a kill" : "")), state \(same ? "identical" : "DIFFERENT")")
    try await reopened.close()
    if !same { exit(1) }
}
