import RefundCore
import RefundEngine
import Testing

@Suite struct GatewayLifecycleTests {
    @Test func retryableFailuresBackOffExponentiallyThenFail() async throws {
        let gateway = SimulatedGateway(.init(failuresPerMillion: 1_000_000, retryableFailures: true))
        let clock = ManualClock(Fixtures.t0)
        let engine = Fixtures.engine(gateway: gateway, clock: clock)
        try await engine.putOrder(Fixtures.tickets(id: "ord_r", count: 1))
        var refund = try await engine.createRefund(orderID: "ord_r", Fixtures.options(), caller: Fixtures.staff)
        #expect(refund.status == .pending)
        #expect(refund.transactions[0].attempts == 1)
        #expect(refund.transactions[0].nextAttemptAt == Fixtures.t0.adding(milliseconds: 1000))

        // Nothing is due before the backoff passes.
        #expect(await engine.runDueAttempts() == 0)
        var expectedDelays: [Int64] = [1000, 2000, 4000, 8000]
        for attempt in 2...5 {
            clock.advance(milliseconds: expectedDelays.removeFirst())
            #expect(await engine.runDueAttempts() == 1)
            refund = try await engine.refund(refund.id)
            #expect(refund.transactions[0].attempts == attempt)
        }
        #expect(refund.status == .failed)
        #expect(refund.transactions[0].failures.count == 5)
        #expect(refund.transactions[0].failures.map(\.attempt) == [1, 2, 3, 4, 5])
        #expect(await engine.attention().map(\.id) == [refund.id])
        let view = try await engine.order("ord_r")
        #expect(view.tenders[0].refunded == 0)
        #expect(view.totals.outstanding == 5000)
        #expect(await engine.events(after: 0).contains { $0.kind == .refundFailed })

        // refund.retry: same amount, succeeds now.
        gateway.script([.succeeded(reference: "re_ok")])
        refund = try await engine.retry(refundID: refund.id, caller: Fixtures.staff)
        #expect(refund.status == .succeeded)
        #expect(refund.transactions[0].attempts == 6)
        #expect(refund.transactions[0].amount == 5000)
        #expect(await engine.attention().isEmpty)
        #expect(try await engine.order("ord_r").totals.refunded == 5000)
    }

    @Test func nonRetryableFailureFailsAtOnceAndCanBeRecovered() async throws {
        let gateway = SimulatedGateway()
        gateway.script([.failed(code: "card_expired", retryable: false)])
        let engine = Fixtures.engine(gateway: gateway)
        try await engine.putOrder(Fixtures.tickets(id: "ord_f", count: 1))
        let refund = try await engine.createRefund(orderID: "ord_f", Fixtures.options(), caller: Fixtures.staff)
        #expect(refund.status == .failed)
        #expect(refund.transactions[0].failures.first?.code == "card_expired")

        let noPermission = await #expect(throws: RefundError.self) {
            try await engine.recover(refundID: refund.id, action: .refundedExternally, note: "paid by bank", caller: Caller(id: "x", permissions: [.refund]))
        }
        #expect(noPermission?.code == .permissionDenied)
        let noNote = await #expect(throws: RefundError.self) {
            try await engine.recover(refundID: refund.id, action: .refundedExternally, note: "", caller: Fixtures.staff)
        }
        #expect(noNote?.code == .invalidField)
        let recovered = try await engine.recover(
            refundID: refund.id, action: .refundedExternally, note: "sent by bank transfer", caller: Fixtures.staff)
        #expect(recovered.recovery?.action == .refundedExternally)
        #expect(await engine.attention().isEmpty)
        let totals = try await engine.order("ord_f").totals
        #expect(totals.refunded == 5000 && totals.outstanding == 0)
        let twice = await #expect(throws: RefundError.self) {
            try await engine.recover(refundID: refund.id, action: .other, note: "again", caller: Fixtures.staff)
        }
        #expect(twice?.code == .invalidState)
        let retryRecovered = await #expect(throws: RefundError.self) {
            try await engine.retry(refundID: refund.id, caller: Fixtures.staff)
        }
        #expect(retryRecovered?.code == .invalidState)
    }

    @Test func asyncSettlementAndThePendingLock() async throws {
        let gateway = SimulatedGateway(.init(neverConfirm: true))
        let engine = Fixtures.engine(gateway: gateway)
        try await engine.putOrder(Fixtures.tickets(id: "ord_s", count: 2))
        let refund = try await engine.createRefund(orderID: "ord_s", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        #expect(refund.status == .pending)
        #expect(refund.transactions[0].gatewayRef != nil)
        let locked = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_s", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        }
        #expect(locked?.code == .init(rawValue: "refund_in_progress"))
        let preview = try await engine.preview(orderID: "ord_s", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        #expect(!preview.refundable && preview.blocked.contains(BlockedItem(line: nil, reason: .refundInProgress)))

        let settled = try await engine.settle(refundID: refund.id, tender: "t1", succeeded: true, reference: "re_1")
        #expect(settled.status == .succeeded && settled.transactions[0].attempts == 1)
        let twice = await #expect(throws: RefundError.self) {
            try await engine.settle(refundID: refund.id, tender: "t1", succeeded: true)
        }
        #expect(twice?.code == .invalidState)
        let unknownTender = await #expect(throws: RefundError.self) {
            try await engine.settle(refundID: refund.id, tender: "t9", succeeded: true)
        }
        #expect(unknownTender?.code == .tenderNotFound)
        try await engine.createRefund(orderID: "ord_s", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
    }

    @Test func asyncConfirmationThroughTheSettlementChannel() async throws {
        let gateway = SimulatedGateway(.init(asyncConfirmation: .milliseconds(5)))
        let engine = Fixtures.engine(gateway: gateway)
        try await engine.putOrder(Fixtures.tickets(id: "ord_a", count: 1))
        let refund = try await engine.createRefund(orderID: "ord_a", Fixtures.options(), caller: Fixtures.staff)
        #expect(refund.status == .pending)
        var status = refund.status
        for _ in 0..<400 where status == .pending {
            try await Task.sleep(for: .milliseconds(5))
            status = try await engine.refund(refund.id).status
        }
        #expect(status == .succeeded)
    }

    @Test func concurrentRefundsOfOneOrderNeverRefundMoreThanPaid() async throws {
        let engine = Fixtures.engine(partitions: 2)
        try await engine.putOrder(Fixtures.tickets(id: "ord_race", count: 5, price: 1000))
        let results = await withTaskGroup(of: Int64.self) { group in
            for task in 0..<64 {
                group.addTask {
                    let line = "l\(task % 5 + 1)"
                    let options = task % 3 == 0 ? Fixtures.options() : Fixtures.options(lines: [line])
                    return (try? await engine.createRefund(orderID: "ord_race", options, caller: Fixtures.staff))?.amount ?? 0
                }
            }
            return await group.reduce(0, +)
        }
        #expect(results == 5000)
        let view = try await engine.order("ord_race")
        #expect(view.tenders[0].refunded == 5000)
        #expect(view.status == .refunded)
    }
}
