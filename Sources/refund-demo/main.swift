import Foundation
import RefundCore
import RefundEngine

/// CPU time of the process so far (user + system), in microseconds: a steadier measure than wall time on a
/// busy machine.
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

// The demo: a generated event of orders cancelled in bulk through the Swift API, printing the summary.
// Usage: refund-demo [orders] [partitions]
let arguments = CommandLine.arguments.dropFirst()
let orderCount = arguments.first.flatMap { Int($0) } ?? 100_000
let partitions = arguments.dropFirst().first.flatMap { Int($0) } ?? EngineConfiguration.activeProcessorCount

let engine = Engine(configuration: EngineConfiguration(partitions: partitions), gateway: SimulatedGateway())
let event = SyntheticEvent(event: "evt_demo", orders: orderCount)
let clock = ContinuousClock()

print("RefundEngine demo: \(orderCount) orders of event \(event.event), \(partitions) partitions")
let residentBefore = residentBytes()
let loadStart = clock.now
let rejected = await engine.putOrders(event.allOrders())
print("loaded \(orderCount - rejected.count) orders in \(clock.now - loadStart) (\(rejected.count) rejected)")

let request = BulkCancelRequest(
    events: [event.event],
    options: RefundOptions(method: .original, fee: .order(200), reason: "event_cancelled", emailText: "Sorry, the show is off."))
let caller = Caller.staff("demo")

let dry = try await engine.runBulkCancellation({ var r = request; r.dryRun = true; return r }(), caller: caller)
print("dry run: would refund \(dry.succeeded) orders, \(Currency.gbp.format(dry.refunded)), retain \(Currency.gbp.format(dry.feeRetained)); skip \(dry.skipped)")

let start = clock.now
let cpuStart = cpuMicroseconds()
let status = try await engine.runBulkCancellation(request, caller: caller)
let elapsed = clock.now - start
let cpu = cpuMicroseconds() - cpuStart
let residentAfter = residentBytes()
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18  // timing only, never money
print("""

Bulk cancellation \(status.jobID): \(status.state.rawValue)
  orders      \(status.processed)/\(status.total)
  succeeded   \(status.succeeded)
  pending     \(status.pending)
  failed      \(status.failed)
  skipped     \(status.skipped)
  refunded    \(Currency.gbp.format(status.refunded))
  fee kept    \(Currency.gbp.format(status.feeRetained))
  time        \(elapsed) (\(Int(Double(status.processed) / max(seconds, 1e-9))) orders/s)
  cpu         \(cpu / 1000) ms (\(cpu * 1000 / max(status.processed, 1)) ns of CPU per order)
  memory      \((residentAfter - residentBefore) / max(orderCount, 1)) bytes resident per order (orders + refunds + outbox)
""")
let stats = await engine.statistics()
print("engine: \(stats.orders) orders, \(stats.refunds) refunds, \(stats.outboxEvents) outbox events, per partition \(stats.ordersPerPartition)")
