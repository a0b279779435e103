import RefundCore
import RefundStorage
import Testing

@testable import RefundEngine

// Holders and `order.transfer`: a ticket line has a holder (by default its purchaser), named at checkout
// (designated) or moved since (transferred); the purchaser stays the refund owner, a ticket away from them is
// not refundable, and back with them it is again. Every move is kept: who, when, from and to whom.
@Suite struct TicketTransferTests {
    static func code(_ body: () async throws(RefundError) -> Void) async -> String? {
        do throws(RefundError) {
            try await body()
            return nil
        } catch { return error.code.rawValue }
    }

    static func order(_ id: String, holders: [String?]) -> Order {
        var order = Fixtures.tickets(id: id, count: holders.count)
        for (i, holder) in holders.enumerated() { order.lines[i].holder = holder }
        return order
    }

    @Test func designatedAtCheckoutTransferredAwayAndBackRefundableAgain() async throws {
        let engine = Fixtures.engine()
        let placed = try await engine.putOrder(Self.order("ord_h", holders: [nil, "att_1", "cus_1"]))
        // A holder named at checkout is designated; the purchaser named as holder is the purchaser.
        #expect(placed.lines.map(\.holderState) == [.purchaser, .designated, .purchaser])
        #expect(placed.lines.map(\.holder) == [nil, "att_1", nil])

        // Away to someone else: transferred, and its refund is blocked.
        let away = try await engine.transferTicket(orderID: "ord_h", line: "l1", to: "att_2", caller: .staff("box_office"))
        #expect(away.lines[0].holderState == .transferred)
        #expect(away.lines[0].holder == "att_2")
        #expect(away.order.lines[0].transferred)
        #expect(await Self.code { () throws(RefundError) in
            try await engine.createRefund(orderID: "ord_h", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        } == "transferred_after_checkout")
        // A designated ticket is not transferred: refundable (to the purchaser's tenders).
        let designated = try await engine.createRefund(orderID: "ord_h", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        #expect(designated.amount == 5000)
        // Back to the purchaser (named by the customer id): with the purchaser, refundable again.
        let back = try await engine.transferTicket(orderID: "ord_h", line: "l1", to: "cus_1", caller: .staff("box_office"))
        #expect(back.lines[0].holderState == .purchaser && back.lines[0].holder == nil && !back.order.lines[0].transferred)
        let refund = try await engine.createRefund(orderID: "ord_h", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        #expect(refund.amount == 5000)

        // The history: who, when, from and to whom, in order; and each move in the timeline.
        let state = try await engine.orderState("ord_h")
        #expect(state.transfers.map(\.from) == [nil, "att_2"])
        #expect(state.transfers.map(\.to) == ["att_2", nil])
        #expect(state.transfers.allSatisfy { $0.line == "l1" && $0.by == "box_office" && $0.at == Fixtures.t0 })
        #expect(back.lines[0].transfers?.count == 2)
        #expect(back.lines[1].transfers == nil)
        let moves = state.timeline.filter { $0.kind == .ticketTransferred }.map(\.detail)
        #expect(moves == ["l1: purchaser → att_2", "l1: att_2 → purchaser"])
    }

    @Test func aDesignatedTicketMovedOnIsTransferredAndCanComeBack() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Self.order("ord_d", holders: ["att_1"]))
        let moved = try await engine.transferTicket(orderID: "ord_d", line: "l1", to: "att_9", caller: Fixtures.staff)
        #expect(moved.lines[0].holderState == .transferred)
        #expect(try await engine.orderState("ord_d").transfers.first?.from == "att_1")
        // Back to the purchaser with a null holder.
        let back = try await engine.transferTicket(orderID: "ord_d", line: "l1", to: nil, caller: Fixtures.staff)
        #expect(back.lines[0].holderState == .purchaser)
    }

    @Test func transfersThatCannotBeAreRefusedAndChangeNothing() async throws {
        let engine = Fixtures.engine()
        var order = Self.order("ord_x", holders: [nil, "att_1"])
        order.lines.append(OrderLine(id: "p1", kind: .product, price: 500))
        order.tenders[0].amount += 500
        try await engine.putOrder(order)
        try await engine.createRefund(orderID: "ord_x", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        let before = try await engine.orderState("ord_x")
        for (line, to, expected) in [
            ("l9", "att_2", "line_not_found"),
            ("p1", "att_2", "invalid_state"),  // a product has no holder
            ("l1", "att_2", "invalid_state"),  // refunded: only an active ticket moves
            ("l2", "att_1", "invalid_state"),  // already there
            ("l2", "bad holder!", "invalid_handle"),
        ] as [(String, String?, String)] {
            let code = await Self.code { () throws(RefundError) in
                try await engine.transferTicket(orderID: "ord_x", line: line, to: to, caller: Fixtures.staff)
            }
            #expect(code == expected, "\(line) → \(to ?? "purchaser")")
        }
        #expect(await Self.code { () throws(RefundError) in
            try await engine.transferTicket(orderID: "nope", line: "l1", to: "a", caller: Fixtures.staff)
        } == "order_not_found")
        #expect(try await engine.orderState("ord_x") == before)
    }

    @Test func aHolderMustBeAHandleOnATicket() async throws {
        let engine = Fixtures.engine()
        var product = Fixtures.tickets(id: "ord_p", count: 1)
        product.lines[0].kind = .product
        product.lines[0].holder = "att_1"
        #expect(await Self.code { () throws(RefundError) in try await engine.putOrder(product) } == "invalid_field")
        #expect(await Self.code { () throws(RefundError) in
            try await engine.putOrder(Self.order("ord_q", holders: ["not a handle"]))
        } == "invalid_handle")
    }

    /// An order replaced (before any refund) without the line a ticket moved on keeps the history, and its
    /// snapshot reads back: a transfer may name a line the order no longer has.
    @Test func aReplacedOrderKeepsItsTransferHistoryThroughASnapshot() async throws {
        let fs = SimulatedFileSystem(seed: 73)
        func open() async throws -> Engine {
            try await Engine.open(
                configuration: EngineConfiguration(partitions: 1),
                durability: DurabilityOptions(directory: "/data", snapshotEveryRecords: 0, snapshotEveryBytes: 0, fileSystem: fs),
                gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
        }
        let engine = try await open()
        try await engine.putOrder(Self.order("ord_r", holders: [nil, nil]))
        try await engine.transferTicket(orderID: "ord_r", line: "l2", to: "att_5", caller: Fixtures.staff)
        var replacement = Self.order("ord_r", holders: [nil])
        replacement.lines[0].price = 4000
        replacement.tenders[0].amount = 4000
        try await engine.putOrder(replacement)
        try await engine.snapshot()
        let before = try await engine.orderState("ord_r")
        #expect(before.transfers.map(\.line) == ["l2"] && before.order.lines.map(\.id) == ["l1"])
        try await engine.close()
        let reopened = try await open()
        #expect(try await reopened.orderState("ord_r") == before)
        try await reopened.close()
    }

    /// Holders and transfers are in the log and in snapshots: a kill, a snapshot and a clean restart keep them.
    @Test(arguments: [false, true]) func holdersAndTransfersSurviveRestarts(snapshotFirst: Bool) async throws {
        let fs = SimulatedFileSystem(seed: snapshotFirst ? 71 : 72)
        func open() async throws -> Engine {
            try await Engine.open(
                configuration: EngineConfiguration(partitions: 2),
                durability: DurabilityOptions(
                    directory: "/data", snapshotEveryRecords: 0, snapshotEveryBytes: 0, fileSystem: fs),
                gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
        }
        let engine = try await open()
        try await engine.putOrder(Self.order("ord_s", holders: [nil, "att_1"]))
        try await engine.transferTicket(orderID: "ord_s", line: "l1", to: "att_2", caller: Fixtures.staff)
        if snapshotFirst { try await engine.snapshot() }
        try await engine.transferTicket(orderID: "ord_s", line: "l2", to: "att_3", caller: Fixtures.staff)
        let before = try await engine.orderState("ord_s")
        let hash = await engine.canonicalHash()
        engine.kill()
        fs.restart(powerLoss: false)
        let reopened = try await open()
        #expect(try await reopened.orderState("ord_s") == before)
        #expect(await reopened.canonicalHash() == hash)
        #expect(try await reopened.orderState("ord_s").transfers.count == 2)
        try await reopened.close()
        let again = try await open()
        #expect(try await again.orderState("ord_s") == before)
        try await again.close()
    }
}
