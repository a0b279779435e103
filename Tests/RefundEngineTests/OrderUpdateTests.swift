import RefundCore
import Testing

@testable import RefundEngine

// `order.update`: facts that are not money change after refunds too, every change in the timeline; refund
// decisions see the new facts.
@Suite struct OrderUpdateTests {
    static func code(_ body: () async throws(RefundError) -> Void) async -> String? {
        do throws(RefundError) {
            try await body()
            return nil
        } catch { return error.code.rawValue }
    }

    @Test func aTicketTransferredBackAfterARefundCanBeRefunded() async throws {
        let engine = Fixtures.engine()
        var order = Fixtures.tickets(id: "ord_t", count: 2)
        order.lines[1].transferred = true
        try await engine.putOrder(order)
        try await engine.createRefund(orderID: "ord_t", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        // l2 was transferred to someone else after checkout: not refundable.
        #expect(await Self.code { () throws(RefundError) in
            try await engine.createRefund(orderID: "ord_t", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        } == "transferred_after_checkout")
        // Re-putting the order after a refund is refused (money could change that way)...
        var back = order
        back.lines[1].transferred = false
        #expect(await Self.code { () throws(RefundError) in try await engine.putOrder(back) } == "order_immutable")
        // ...but its facts can change: the ticket is back with the purchaser.
        let view = try await engine.updateOrder(
            orderID: "ord_t", OrderFactsUpdate(lines: [.init(id: "l2", transferred: false)]), caller: Fixtures.staff)
        #expect(view.order.lines[1].transferred == false)
        let refund = try await engine.createRefund(orderID: "ord_t", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        #expect(refund.amount == 5000)
        let timeline = try await engine.orderState("ord_t").timeline
        #expect(timeline.contains { $0.kind == .orderUpdated && $0.detail == "l2.transferred=false" && $0.by == "staff_1" })
    }

    @Test func freezingStopsRefundsAndThawingLetsThemThrough() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_f", count: 2))
        try await engine.createRefund(orderID: "ord_f", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        try await engine.updateOrder(orderID: "ord_f", OrderFactsUpdate(frozen: true, syncPending: true), caller: Fixtures.staff)
        let blocked = await Self.code { () throws(RefundError) in
            try await engine.createRefund(orderID: "ord_f", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        }
        #expect(blocked == "order_frozen" || blocked == "sync_pending", "\(blocked ?? "accepted")")
        try await engine.updateOrder(orderID: "ord_f", OrderFactsUpdate(frozen: false, syncPending: false), caller: Fixtures.staff)
        try await engine.createRefund(orderID: "ord_f", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        #expect(try await engine.order("ord_f").status == .refunded)
    }

    @Test func badUpdatesAreRefusedAndAnUpdateThatChangesNothingIsNotLogged() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_u", count: 1))
        let before = try await engine.orderState("ord_u")
        for (update, expected) in [
            (OrderFactsUpdate(), "missing_field"),
            (OrderFactsUpdate(lines: [.init(id: "l9", transferred: true)]), "line_not_found"),
            (OrderFactsUpdate(lines: [.init(id: "l1", claimed: true), .init(id: "l1", transferred: true)]), "duplicate_id"),
            (OrderFactsUpdate(lines: [.init(id: "l1")]), "missing_field"),
        ] {
            #expect(await Self.code { () throws(RefundError) in
                try await engine.updateOrder(orderID: "ord_u", update, caller: Fixtures.staff)
            } == expected)
        }
        #expect(await Self.code { () throws(RefundError) in
            try await engine.updateOrder(orderID: "ord_x", OrderFactsUpdate(frozen: true), caller: Fixtures.staff)
        } == "order_not_found")
        // frozen is already false: nothing changes, nothing is logged.
        try await engine.updateOrder(orderID: "ord_u", OrderFactsUpdate(frozen: false), caller: Fixtures.staff)
        #expect(try await engine.orderState("ord_u") == before)
    }

    @Test func updatesSurviveARestart() async throws {
        let dir = TemporaryDirectory("update")
        func open() async throws -> Engine {
            try await Engine.open(
                configuration: EngineConfiguration(partitions: 2), durability: DurabilityOptions(directory: dir.path),
                gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
        }
        let first = try await open()
        try await first.putOrder(Fixtures.tickets(id: "ord_r", count: 2))
        try await first.createRefund(orderID: "ord_r", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        try await first.updateOrder(
            orderID: "ord_r", OrderFactsUpdate(frozen: true, lines: [.init(id: "l2", transferred: true)]), caller: Fixtures.staff)
        let state = try await first.orderState("ord_r")
        first.kill()
        let second = try await open()
        #expect(try await second.orderState("ord_r") == state, "replayed from the log")
        try await second.close()
        let third = try await open()
        #expect(try await third.orderState("ord_r") == state, "restored from the snapshot")
        try await third.close()
    }
}
