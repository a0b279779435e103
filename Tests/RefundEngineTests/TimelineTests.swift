import RefundCore
import Testing

@testable import RefundEngine

// The order timeline says what each step was: a refund's amount, method, fee kept and note; a cancellation's
// note; each transaction's amount; the note a dispute was closed with; and who did it.
@Suite struct TimelineTests {
    @Test func entriesCarryAmountsMethodsFeesActorsAndNotes() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.contractOrder())
        try await engine.putOrder(Fixtures.tickets(id: "ord_2", count: 2))
        var options = Fixtures.options(.original, fee: .order(500), reason: "customer_request")
        options.note = "asked by phone"
        let refund = try await engine.createRefund(orderID: "ord_1", options, caller: .staff("ops_anna"))
        _ = try await engine.cancelOrder(
            orderID: "ord_2", refund: false, reason: "fraud", note: "chargeback risk", lines: ["l1"], caller: .staff("ops_ben"))
        _ = try await engine.openDispute(orderID: "ord_2", reason: "fraud", caller: .staff("ops_ben"))
        _ = try await engine.closeDispute(orderID: "ord_2", outcome: .won, note: "evidence accepted", caller: .staff("ops_cy"))

        let first = try await engine.timelineItems("ord_1")
        let created = try #require(first.first { $0.kind == .refundCreated })
        #expect(created.amount == refund.amount && created.currency == "GBP" && created.method == .original)
        #expect(created.feeRetained == refund.feeRetained && created.feeRetained == 500)
        #expect(created.note == "asked by phone" && created.by == "ops_anna" && created.detail == "customer_request")
        let card = try #require(first.first { $0.kind == .attemptSucceeded && $0.detail == "t1" })
        #expect(card.amount == refund.transactions.first { $0.tender == "t1" }?.amount)

        let second = try await engine.timelineItems("ord_2")
        let cancelled = try #require(second.first { $0.kind == .cancellationCreated })
        #expect(cancelled.note == "chargeback risk" && cancelled.method == RefundMethod.none && cancelled.by == "ops_ben")
        let closed = try #require(second.first { $0.kind == .disputeClosed })
        #expect(closed.note == "evidence accepted" && closed.detail == "won" && closed.by == "ops_cy")
        // The entries themselves are unchanged: the items add facts, they do not reorder or drop any.
        #expect(try await engine.timeline("ord_2").map(\.kind) == second.map(\.kind))
    }
}
