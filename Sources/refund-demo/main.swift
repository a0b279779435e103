import RefundCore
import RefundEngine

// The demo: a generated event of orders cancelled in bulk through the Swift API, printing the summary.
// Usage: refund-demo [orders] [partitions]
let arguments = CommandLine.arguments.dropFirst()
let orderCount = arguments.first.flatMap { Int($0) } ?? 100_000
let partitions = arguments.dropFirst().first.flatMap { Int($0) } ?? EngineConfiguration.activeProcessorCount

let engine = Engine(configuration: EngineConfiguration(partitions: partitions), gateway: SimulatedGateway())
let event = SyntheticEvent(event: "evt_demo", orders: orderCount)
let clock = ContinuousClock()

print("RefundEngine demo: \(orderCount) orders of event \(event.event), \(partitions) partitions")
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
let status = try await engine.runBulkCancellation(request, caller: caller)
let elapsed = clock.now - start
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
""")
let stats = await engine.statistics()
print("engine: \(stats.orders) orders, \(stats.refunds) refunds, \(stats.outboxEvents) outbox events, per partition \(stats.ordersPerPartition)")
