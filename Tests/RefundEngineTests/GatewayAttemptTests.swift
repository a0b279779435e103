import RefundCore
import RefundEngine
import Synchronization
import Testing

/// A gateway that answers from a script and records every idempotency key it was sent.
final class ScriptedGateway: PaymentGateway {
    private let state = Mutex<(script: [[GatewayOutcome]], keys: [String])>(([], []))

    /// One entry per call: the outcomes of that batch (may be shorter than the batch).
    func then(_ outcomes: [GatewayOutcome]) { state.withLock { $0.script.append(outcomes) } }
    var keys: [String] { state.withLock { $0.keys } }

    func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        state.withLock { s in
            s.keys += requests.map(\.idempotencyKey)
            guard !s.script.isEmpty else { return requests.map { .succeeded(reference: "re_\($0.idempotencyKey)") } }
            return s.script.removeFirst()
        }
    }
}

/// Issue 7 item 2: gateway answers are bound to their attempt; unknown outcomes go again under the same key.
@Suite struct GatewayAttemptTests {
    static func engine(_ gateway: ScriptedGateway, clock: ManualClock) -> Engine {
        Engine(configuration: EngineConfiguration(partitions: 1), gateway: gateway, clock: clock)
    }

    /// The reproduced defect: create; settle attempt 1 as failed; retry (attempt 2); the late answer for attempt
    /// 1 closed attempt 2 with attempt 1's reference. Now it is recorded on the refund, attempt 2 stays open, and
    /// when attempt 2 also succeeds the refund is flagged as a suspected duplicate payment.
    @Test func aLateAnswerForAnOldAttemptNeverClosesTheNewOne() async throws {
        let gateway = ScriptedGateway()
        let clock = ManualClock(Fixtures.t0)
        let engine = Self.engine(gateway, clock: clock)
        try await engine.putOrder(Fixtures.tickets(id: "ord_1", count: 1))
        gateway.then([.pending(reference: "re_a1")])
        let created = try await engine.createRefund(orderID: "ord_1", Fixtures.options(), caller: Fixtures.staff)
        #expect(created.status == .pending)
        try await engine.settle(refundID: created.id, tender: "t1", attempt: 1, succeeded: false, failureCode: "declined")
        gateway.then([.pending(reference: "re_a2")])
        let retried = try await engine.retry(refundID: created.id, caller: Fixtures.staff)
        #expect(retried.transactions[0].attempts == 2 && retried.status == .pending)
        #expect(gateway.keys == ["\(created.id):t1:1", "\(created.id):t1:2"])

        // Attempt 1's late success: recorded, not applied to attempt 2.
        let late = try await engine.settle(refundID: created.id, tender: "t1", attempt: 1, succeeded: true, reference: "re_a1")
        #expect(late.status == .pending)
        #expect(late.transactions[0].gatewayRef == "re_a2")
        #expect(late.lateAnswers.count == 1 && late.lateAnswers[0].attempt == 1 && late.lateAnswers[0].succeeded)
        #expect(!late.duplicatePaymentSuspected)
        #expect(try await engine.timeline("ord_1").contains { $0.kind == .lateAnswer })

        // Attempt 2 succeeds too: both attempts paid; never silently merged.
        let done = try await engine.settle(refundID: created.id, tender: "t1", attempt: 2, succeeded: true, reference: "re_a2")
        #expect(done.status == .succeeded)
        #expect(done.duplicatePaymentSuspected)
        #expect(done.overRefunded == 5000)
        #expect(done.attentionReason == "duplicate_payment_suspected")
        #expect(await engine.attention().map(\.id) == [created.id])

        // A repeated answer for the same attempt is the same payment (the same key), not a second one.
        let repeated = try await engine.settle(refundID: created.id, tender: "t1", attempt: 2, succeeded: true, reference: "re_a2")
        #expect(repeated.overRefunded == 5000)

        // An attempt that was never sent is refused.
        await #expect(throws: RefundError.self) {
            try await engine.settle(refundID: created.id, tender: "t1", attempt: 3, succeeded: true)
        }
    }

    /// An unknown outcome (timeout, reset) and a short answer array go again later under the same key, until
    /// a definite answer; a new key only after a definite failure. The scheduler does not spin.
    @Test func unknownOutcomesRetryUnderTheSameKey() async throws {
        let gateway = ScriptedGateway()
        let clock = ManualClock(Fixtures.t0)
        let engine = Self.engine(gateway, clock: clock)
        try await engine.putOrder(Fixtures.tickets(id: "ord_2", count: 1))
        try await engine.putOrder(Fixtures.tickets(id: "ord_3", count: 1))
        gateway.then([.unknown(reason: "timeout")])
        let refund = try await engine.createRefund(orderID: "ord_2", Fixtures.options(), caller: Fixtures.staff)
        #expect(refund.status == .pending && refund.transactions[0].attempts == 0)
        #expect(try await engine.timeline("ord_2").contains { $0.kind == .attemptUnknown })
        // Not due at once: nothing is sent again at the same instant (no spin).
        #expect(await engine.runDueAttempts() == 0)

        clock.advance(milliseconds: 3_600_000)
        gateway.then([])  // a short answer: no outcome at all
        #expect(await engine.runDueAttempts() == 1)
        #expect(await engine.runDueAttempts() == 0)

        clock.advance(milliseconds: 3_600_000)
        gateway.then([.failed(code: "try_later", retryable: true)])
        #expect(await engine.runDueAttempts() == 1)
        clock.advance(milliseconds: 3_600_000)
        #expect(await engine.runDueAttempts() == 1)
        let keys = gateway.keys
        #expect(keys == ["rf_1_ord_2:t1:1", "rf_1_ord_2:t1:1", "rf_1_ord_2:t1:1", "rf_1_ord_2:t1:2"])
        #expect(try await engine.refund("rf_1_ord_2").status == .succeeded)
    }
}
