import RefundCore
import Testing

@testable import RefundEngine

// Gateway limits: the engine paces its calls so a provider's rate limit is never exceeded, and a `rateLimited`
// answer is sent again after its retry-after without counting an attempt. (The timing itself — a job finishing in
// requests ÷ rate — is measured by `refund-demo --gateway-rate`, docs/performance.md, not asserted here.)
@Suite struct GatewayPacingTests {
    static func orders(_ engine: Engine, _ count: Int) async throws {
        let failed = await engine.putOrders((0..<count).map { Fixtures.tickets(id: "ord_\($0)", event: "evt_p", count: 1) })
        #expect(failed.isEmpty)
    }

    static let request = BulkCancelRequest(
        events: ["evt_p"], options: RefundOptions(method: .original, reason: "event_cancelled"))

    @Test func pacedCallsNeverExceedTheProvidersLimit() async throws {
        let gateway = SimulatedGateway(SimulatedGateway.Configuration(requestsPerSecond: 200))
        let engine = Engine(
            // Under the provider's limit, as docs/operations.md advises: requests reach the provider a variable time
            // after the pacer admits them, and on this 2-core machine under the whole test suite that jitter is
            // tens of milliseconds (at 190/s and at 170/s the provider refused a few now and then).
            configuration: EngineConfiguration(partitions: 2, gatewayLimits: GatewayLimits(requestsPerSecond: 150)),
            gateway: gateway)
        try await Self.orders(engine, 300)
        let start = ContinuousClock.now
        let status = try await engine.runBulkCancellation(Self.request, caller: Fixtures.staff)
        let elapsed = ContinuousClock.now - start
        #expect(status.succeeded == 300 && status.failed == 0 && status.pending == 0, "\(status)")
        #expect(gateway.rateLimitedCount == 0, "the pacer kept every call inside the provider's limit")
        #expect(gateway.peakRequestsPerSecond <= 200)
        // 300 requests at 150/s: more than one second's allowance, so over a second.
        #expect(elapsed >= .milliseconds(1000), "\(elapsed)")
    }

    @Test func rateLimitedAnswersAreSentAgainWithoutCountingAnAttempt() async throws {
        let gateway = SimulatedGateway(SimulatedGateway.Configuration(requestsPerSecond: 150))
        let engine = Engine(configuration: EngineConfiguration(partitions: 2), gateway: gateway)  // no pacing
        try await Self.orders(engine, 200)
        let status = try await engine.runBulkCancellation(Self.request, caller: Fixtures.staff)
        #expect(status.succeeded == 200, "\(status)")
        #expect(gateway.rateLimitedCount > 0, "the provider refused some requests")
        #expect(gateway.requestCount == 200, "each refund reached the provider once")
        for n in [0, 77, 199] {
            let refund = try #require(try await engine.order("ord_\(n)").refunds.first)
            #expect(refund.transactions.allSatisfy { $0.attempts == 1 && $0.failures.isEmpty }, "\(refund)")
        }
    }

    @Test func aProviderThatKeepsRefusingLeavesTheAttemptToTheRetryScheduler() async throws {
        let gateway = SimulatedGateway(SimulatedGateway.Configuration(requestsPerSecond: 5))
        let engine = Engine(
            configuration: EngineConfiguration(
                partitions: 1, gatewayLimits: GatewayLimits(maximumRateLimitWait: .milliseconds(200))),
            gateway: gateway)
        try await Self.orders(engine, 20)
        let status = try await engine.runBulkCancellation(Self.request, caller: Fixtures.staff)
        #expect(status.succeeded == 5 && status.pending == 15 && status.failed == 0, "\(status)")
        let waiting = try #require(try await engine.order("ord_19").refunds.first?.transactions.first)
        #expect(waiting.status == .pending && waiting.failures.isEmpty && waiting.nextAttemptAt != nil)
    }

    @Test func aPacedJobReportsItsPaceAndETA() async throws {
        let engine = Engine(
            configuration: EngineConfiguration(partitions: 2, gatewayLimits: GatewayLimits(requestsPerSecond: 40)),
            gateway: SimulatedGateway())
        try await Self.orders(engine, 100)
        let jobID = try await engine.startBulkCancellation(Self.request, caller: Fixtures.staff)
        try await Task.sleep(for: .milliseconds(600))
        let running = try engine.bulkStatus(jobID: jobID)
        #expect(running.state == .running && running.processed < 100, "\(running)")
        if running.processed > 0 {
            #expect((running.etaSeconds ?? 0) > 0 && (running.ordersPerSecond ?? 0) > 0, "\(running)")
        }
        var done = try engine.bulkStatus(jobID: jobID)
        while done.state == .running {
            try await Task.sleep(for: .milliseconds(100))
            done = try engine.bulkStatus(jobID: jobID)
        }
        #expect(done.succeeded == 100 && done.etaSeconds == nil)
        // 100 requests at 40/s: the pace it reports is at most the rate (plus the first second's allowance).
        #expect((done.ordersPerSecond ?? 0) > 0 && (done.ordersPerSecond ?? .infinity) <= 80, "\(done)")
    }

    @Test func thePacerSpacesAndBoundsEveryWindow() async {
        let pacer = GatewayPacer(GatewayLimits(requestsPerSecond: 100))
        var sends: [(ContinuousClock.Instant, Int)] = []
        for _ in 0..<30 {
            while let wait = await pacer.admit(10) { try? await Task.sleep(for: wait) }
            sends.append((ContinuousClock.now, 10))
        }
        // 300 requests at 100/s: the last call goes about 2.9 s after the first (never sooner), and no second
        // holds more than 100.
        let span = sends[sends.count - 1].0 - sends[0].0
        #expect(span >= .milliseconds(2850), "\(span)")
        for (i, send) in sends.enumerated() {
            let inWindow = sends[i...].prefix { $0.0 < send.0 + .seconds(1) }.reduce(0) { $0 + $1.1 }
            #expect(inWindow <= 100, "window from send \(i)")
        }
    }
}
