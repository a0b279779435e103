import Benchmark
import RefundCore
import RefundEngine

// One `createRefund` (whole order, original method, simulated gateway answering at once) on an order that has no
// refund yet. Each iteration builds a fresh one-partition engine holding `ordersPerIteration` synthetic orders outside
// the measured section, then measures refunding each of them once; scalingFactor .kilo makes the figures per refund.
let benchmarks: @Sendable () -> Void = {
    let ordersPerIteration = BenchmarkScalingFactor.kilo.rawValue
    let event = SyntheticEvent(event: "evt_one", orders: ordersPerIteration)
    let orders = event.allOrders()
    let options = RefundOptions(method: .original, reason: "event_cancelled")
    let caller = Caller.staff("bench")

    Benchmark(
        "OneRefund",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            scalingFactor: .kilo,
            maxDuration: .seconds(5),
            maxIterations: 200,
            thresholds: [.mallocCountTotal: .init(relative: [.p90: 5.0])]
        )
    ) { benchmark in
        let engine = Engine(configuration: EngineConfiguration(partitions: 1), gateway: SimulatedGateway())
        let rejected = await engine.putOrders(orders)
        guard rejected.isEmpty else {
            benchmark.error("\(rejected.count) synthetic orders rejected: \(rejected[0].error)")
            return
        }
        benchmark.startMeasurement()
        for order in orders {
            blackHole(try await engine.createRefund(orderID: order.id, options, caller: caller))
        }
        benchmark.stopMeasurement()
        engine.shutdown()
    }
}
