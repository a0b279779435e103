@testable import RefundCore
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

    /// A durable engine on `fs` (no automatic snapshots), the clock at the fixtures' start.
    static func durable(_ fs: SimulatedFileSystem, partitions: Int) async throws -> Engine {
        try await Engine.open(
            configuration: EngineConfiguration(partitions: partitions),
            durability: DurabilityOptions(directory: "/data", snapshotEveryRecords: 0, snapshotEveryBytes: 0, fileSystem: fs),
            gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
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
        func open() async throws -> Engine { try await TicketTransferTests.durable(fs, partitions: 1) }
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
        func open() async throws -> Engine { try await TicketTransferTests.durable(fs, partitions: 2) }
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

// Pending transfers: asked for, the ticket stays where it is until accepted (it moves) or cancelled; meanwhile no
// other transfer of the line starts and the buyer cannot refund it themselves (`transfer_pending`).
@Suite struct PendingTransferTests {
    static func selfServiceRefund(_ engine: Engine, _ orderID: String, line: String) async -> String? {
        await TicketTransferTests.code { () throws(RefundError) in
            try await engine.createRefund(
                orderID: orderID, RefundOptions(lines: [line], method: .balance, reason: "customer_request", selfService: true),
                caller: .customer("cus_1"))
        }
    }

    @Test func aPendingTransferBlocksSelfServiceAndOtherTransfersUntilDecided() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_p", count: 2))
        let asked = try await engine.transferTicket(
            orderID: "ord_p", line: "l1", to: "att_2", pending: true, caller: .staff("app"))
        // Nothing moved yet; the history says pending.
        #expect(asked.lines[0].holderState == .purchaser && asked.lines[0].holder == nil)
        #expect(asked.lines[0].transfers?.map(\.status) == [.pending])
        // The buyer cannot refund the ticket on its way to someone else; the other ticket they can.
        let blocked = await Self.selfServiceRefund(engine, "ord_p", line: "l1")
        #expect(blocked == "transfer_pending", "\(blocked ?? "accepted")")
        #expect(await Self.selfServiceRefund(engine, "ord_p", line: "l2") == nil)
        // No second transfer while one is pending.
        #expect(await TicketTransferTests.code { () throws(RefundError) in
            try await engine.transferTicket(orderID: "ord_p", line: "l1", to: "att_3", caller: Fixtures.staff)
        } == "invalid_state")
        // Accepted: the ticket moves now.
        let accepted = try await engine.decideTransfer(orderID: "ord_p", line: "l1", accept: true, caller: .staff("att_2"))
        #expect(accepted.lines[0].holderState == .transferred && accepted.lines[0].holder == "att_2")
        let transfer = try #require(accepted.lines[0].transfers?.first)
        #expect(transfer.status == .completed && transfer.decidedBy == "att_2" && transfer.decidedAt == Fixtures.t0)
        // Nothing is pending any more.
        #expect(await TicketTransferTests.code { () throws(RefundError) in
            try await engine.decideTransfer(orderID: "ord_p", line: "l1", accept: true, caller: Fixtures.staff)
        } == "invalid_state")
        let kinds = try await engine.orderState("ord_p").timeline.map(\.kind)
        #expect(kinds.filter { $0 == .transferPending }.count == 1 && kinds.filter { $0 == .ticketTransferred }.count == 1)
    }

    @Test func aCancelledTransferLeavesTheTicketWhereItWas() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_c", count: 1))
        try await engine.transferTicket(orderID: "ord_c", line: "l1", to: "att_2", pending: true, caller: Fixtures.staff)
        let cancelled = try await engine.decideTransfer(orderID: "ord_c", line: "l1", accept: false, caller: Fixtures.staff)
        #expect(cancelled.lines[0].holderState == .purchaser)
        #expect(cancelled.lines[0].transfers?.map(\.status) == [.cancelled])
        #expect(try await engine.orderState("ord_c").timeline.last?.kind == .transferCancelled)
        // And a new transfer may start.
        try await engine.transferTicket(orderID: "ord_c", line: "l1", to: "att_3", caller: Fixtures.staff)
    }

    @Test func aRefundedTicketsPendingTransferCanOnlyBeCancelled() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_r", count: 2))
        try await engine.transferTicket(orderID: "ord_r", line: "l1", to: "att_2", pending: true, caller: Fixtures.staff)
        // Staff may still refund it (the purchaser owns the money)...
        try await engine.createRefund(orderID: "ord_r", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        // ...and then the transfer cannot complete, only be cancelled.
        #expect(await TicketTransferTests.code { () throws(RefundError) in
            try await engine.decideTransfer(orderID: "ord_r", line: "l1", accept: true, caller: Fixtures.staff)
        } == "invalid_state")
        try await engine.decideTransfer(orderID: "ord_r", line: "l1", accept: false, caller: Fixtures.staff)
        #expect(await TicketTransferTests.code { () throws(RefundError) in
            try await engine.decideTransfer(orderID: "ord_r", line: "l9", accept: false, caller: Fixtures.staff)
        } == "line_not_found")
    }

    @Test func aPendingTransferSurvivesAKillAndIsDecidedAfter() async throws {
        let fs = SimulatedFileSystem(seed: 74)
        func open() async throws -> Engine { try await TicketTransferTests.durable(fs, partitions: 2) }
        let engine = try await open()
        try await engine.putOrder(Fixtures.tickets(id: "ord_k", count: 1))
        try await engine.transferTicket(orderID: "ord_k", line: "l1", to: "att_2", pending: true, caller: Fixtures.staff)
        let before = try await engine.orderState("ord_k")
        engine.kill()
        fs.restart(powerLoss: false)
        let reopened = try await open()
        #expect(try await reopened.orderState("ord_k") == before)
        #expect(await Self.selfServiceRefund(reopened, "ord_k", line: "l1") == "transfer_pending")
        try await reopened.decideTransfer(orderID: "ord_k", line: "l1", accept: true, caller: Fixtures.staff)
        try await reopened.snapshot()
        let decided = try await reopened.orderState("ord_k")
        try await reopened.close()
        let again = try await open()
        #expect(try await again.orderState("ord_k") == decided)
        #expect(decided.order.lines[0].holder == "att_2")
        try await again.close()
    }
}

// Where transfers meet the checkout's own facts: a re-sent order, the `transferred` flag, `order.update`.
@Suite struct TransferAndCheckoutFactsTests {
    @Test func reSendingTheOriginalOrderDoesNotUndoATransfer() async throws {
        let engine = Fixtures.engine()
        let original = Fixtures.tickets(id: "ord_re", count: 2)
        try await engine.putOrder(original)
        try await engine.transferTicket(orderID: "ord_re", line: "l1", to: "att_2", caller: Fixtures.staff)
        let moved = try await engine.orderState("ord_re")
        // The checkout retries its original payload: no change, the ticket stays with att_2.
        let again = try await engine.putOrder(original)
        #expect(again.lines[0].holder == "att_2" && again.lines[0].holderState == .transferred)
        #expect(try await engine.orderState("ord_re") == moved)
        // A real replacement (before any refund) keeps the moved ticket where it went.
        var replacement = original
        replacement.lines[1].price = 4000
        replacement.tenders[0].amount -= 1000
        let replaced = try await engine.putOrder(replacement)
        #expect(replaced.lines[0].holder == "att_2" && replaced.lines[1].paidValue == 4000)
        // After a refund of the other line, the original payload again is not new content.
        try await engine.createRefund(orderID: "ord_re", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        try await engine.putOrder(replacement)
    }

    @Test func aTicketMarkedTransferredWithNoHolderKnownCanBeMovedBack() async throws {
        let engine = Fixtures.engine()
        var order = Fixtures.tickets(id: "ord_old", count: 1)
        order.lines[0].transferred = true  // the checkout's flag, no holder named
        let placed = try await engine.putOrder(order)
        #expect(placed.lines[0].holderState == .transferred)
        let back = try await engine.transferTicket(orderID: "ord_old", line: "l1", to: nil, caller: Fixtures.staff)
        #expect(back.lines[0].holderState == .purchaser && !back.order.lines[0].transferred)
        try await engine.createRefund(orderID: "ord_old", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
    }

    @Test func anUpdateThatSaysTheTicketIsBackClearsItsHolder() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_up", count: 1))
        try await engine.transferTicket(orderID: "ord_up", line: "l1", to: "att_2", caller: Fixtures.staff)
        let view = try await engine.updateOrder(
            orderID: "ord_up", OrderFactsUpdate(lines: [.init(id: "l1", transferred: false)]), caller: Fixtures.staff)
        // Not "designated": nobody but the purchaser holds it.
        #expect(view.lines[0].holderState == .purchaser && view.lines[0].holder == nil)
    }

    /// A version 4 order state (transfers without a status) reads its transfers as completed.
    @Test func version4StatesReadTheirTransfersAsCompleted() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_v4", count: 1))
        try await engine.transferTicket(orderID: "ord_v4", line: "l1", to: "att_2", caller: Fixtures.staff)
        let state = try await engine.orderState("ord_v4")
        var reader = BinaryReader(OrderStateCodec.encodeVersion4(state))
        let (decoded, version) = try OrderStateCodec.decodeWithVersion(from: &reader)
        try reader.expectEnd()
        #expect(version == 4 && decoded == state && decoded.transfers.first?.status == .completed)
    }
}

// Members-only events: a member holds at most one active ticket, so a ticket does not go back to a purchaser who
// holds another one, in this order or any other, in any partition (`transfer_back_blocked`).
@Suite struct MembersOnlyTransferTests {
    static func order(_ id: String, customer: String, event: String = "evt_m", count: Int) -> Order {
        Fixtures.tickets(id: id, event: event, count: count, customer: customer)
    }

    @Test func aTicketDoesNotGoBackToAMemberWhoHoldsAnother() async throws {
        let engine = Fixtures.engine(partitions: 3)
        try await engine.putEvent(EventSettings(id: "evt_m", membersOnly: true), caller: Fixtures.staff)
        try await engine.putOrder(Self.order("ord_a", customer: "mem_1", count: 2))
        try await engine.transferTicket(orderID: "ord_a", line: "l1", to: "mem_2", caller: Fixtures.staff)
        // mem_1 still holds l2: l1 cannot come back.
        #expect(await TicketTransferTests.code { () throws(RefundError) in
            try await engine.transferTicket(orderID: "ord_a", line: "l1", to: nil, caller: Fixtures.staff)
        } == "transfer_back_blocked")
        // Nor through a pending transfer, when it is accepted (asking is allowed: nothing moves yet).
        try await engine.transferTicket(orderID: "ord_a", line: "l1", to: "mem_1", pending: true, caller: Fixtures.staff)
        #expect(await TicketTransferTests.code { () throws(RefundError) in
            try await engine.decideTransfer(orderID: "ord_a", line: "l1", accept: true, caller: Fixtures.staff)
        } == "transfer_back_blocked")
        try await engine.decideTransfer(orderID: "ord_a", line: "l1", accept: false, caller: Fixtures.staff)
        // Once l2 is refunded, mem_1 holds none: l1 may come back.
        try await engine.createRefund(orderID: "ord_a", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        let back = try await engine.transferTicket(orderID: "ord_a", line: "l1", to: "mem_1", caller: Fixtures.staff)
        #expect(back.lines[0].holderState == .purchaser)
    }

    @Test func ticketsHeldInOtherOrdersCountToo() async throws {
        let engine = Fixtures.engine(partitions: 4)
        try await engine.putEvent(EventSettings(id: "evt_m", membersOnly: true), caller: Fixtures.staff)
        try await engine.putOrder(Self.order("ord_a", customer: "mem_1", count: 1))
        try await engine.transferTicket(orderID: "ord_a", line: "l1", to: "mem_9", caller: Fixtures.staff)
        // Another member's order names mem_1 as the holder of one of its tickets (designated).
        var other = Self.order("ord_b", customer: "mem_3", count: 1)
        other.lines[0].holder = "mem_1"
        try await engine.putOrder(other)
        #expect(await TicketTransferTests.code { () throws(RefundError) in
            try await engine.transferTicket(orderID: "ord_a", line: "l1", to: nil, caller: Fixtures.staff)
        } == "transfer_back_blocked")
        // That ticket moves on: mem_1 holds none now.
        try await engine.transferTicket(orderID: "ord_b", line: "l1", to: "mem_4", caller: Fixtures.staff)
        try await engine.transferTicket(orderID: "ord_a", line: "l1", to: nil, caller: Fixtures.staff)
        // A ticket of another event does not count, and an event that is not members-only has no such rule.
        try await engine.putOrder(Self.order("ord_c", customer: "mem_5", event: "evt_open", count: 2))
        try await engine.transferTicket(orderID: "ord_c", line: "l1", to: "mem_6", caller: Fixtures.staff)
        try await engine.transferTicket(orderID: "ord_c", line: "l1", to: nil, caller: Fixtures.staff)
    }

    @Test func theSettingIsDurableAndOlderSettingsRecordsStillRead() async throws {
        let fs = SimulatedFileSystem(seed: 75)
        func open() async throws -> Engine { try await TicketTransferTests.durable(fs, partitions: 2) }
        let engine = try await open()
        try await engine.putEvent(EventSettings(id: "evt_m", selfServiceCutoffHours: 12, membersOnly: true), caller: Fixtures.staff)
        engine.kill()
        fs.restart(powerLoss: false)
        let reopened = try await open()
        #expect(try reopened.eventSettings("evt_m") == EventSettings(id: "evt_m", selfServiceCutoffHours: 12, membersOnly: true))
        try await reopened.close()
        // A kind 9 record (before members-only) reads as not members-only; kind 10 round-trips.
        var nine = ControlLog.encode(EventSettings(id: "evt_x", selfServiceCutoffHours: 5))
        nine[0] = ControlLog.eventSettings
        nine.removeLast()
        guard case .eventSettings(let old) = try ControlLog.decode(nine) else { Issue.record("not event settings"); return }
        #expect(old == EventSettings(id: "evt_x", selfServiceCutoffHours: 5, membersOnly: false))
        let ten = ControlLog.encode(EventSettings(id: "evt_y", membersOnly: true))
        guard case .eventSettings(let new) = try ControlLog.decode(ten) else { Issue.record("not event settings"); return }
        #expect(new.membersOnly && new.selfServiceCutoffHours == nil)
    }
}
