import RefundCore
import RefundEngine
import Testing

@Suite struct CasesTests {
    @Test func disputesBlockRefundsUntilClosed() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_d", count: 1))
        try await engine.openDispute(orderID: "ord_d", reason: "chargeback", caller: Fixtures.staff)
        let blocked = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_d", Fixtures.options(), caller: Fixtures.staff)
        }
        #expect(blocked?.code == .init(rawValue: "disputed"))
        let twice = await #expect(throws: RefundError.self) {
            try await engine.openDispute(orderID: "ord_d", reason: nil, caller: Fixtures.staff)
        }
        #expect(twice?.code == .invalidState)
        try await engine.closeDispute(orderID: "ord_d", outcome: .won, note: "evidence accepted", caller: Fixtures.staff)
        let notOpen = await #expect(throws: RefundError.self) {
            try await engine.closeDispute(orderID: "ord_d", outcome: .won, note: nil, caller: Fixtures.staff)
        }
        #expect(notOpen?.code == .disputeNotOpen)
        try await engine.createRefund(orderID: "ord_d", Fixtures.options(), caller: Fixtures.staff)
        let kinds = try await engine.timeline("ord_d").map(\.kind)
        #expect(kinds == [.orderPlaced, .disputeOpened, .disputeClosed, .refundCreated, .attemptSucceeded])
    }

    @Test func buyerRequestsApproveAndDecline() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_q", count: 3))
        let buyer = Caller.customer("cus_1")
        let request = try await engine.requestRefund(orderID: "ord_q", lines: ["l1", "l2"], reason: "I can't go", caller: buyer)
        #expect(request.id == "rq_1_ord_q" && request.status == .open)
        #expect(await engine.openRequests().map(\.id) == [request.id])
        let refund = try await engine.approveRequest(
            requestID: request.id, RefundOptions(method: .original, reason: "customer_request"), note: "ok, goodwill",
            caller: Fixtures.staff)
        #expect(refund.lines.map(\.line) == ["l1", "l2"])
        #expect(refund.requestID == request.id)
        #expect(await engine.openRequests().isEmpty)
        let decided = try await engine.order("ord_q").requests[0]
        #expect(decided.status == .approved && decided.adminNote == "ok, goodwill" && decided.refundID == refund.id)

        let second = try await engine.requestRefund(orderID: "ord_q", lines: nil, reason: "and the last one", caller: buyer)
        let declined = try await engine.declineRequest(requestID: second.id, note: "outside policy", caller: Fixtures.staff)
        #expect(declined.status == .declined && declined.adminNote == "outside policy")
        let again = await #expect(throws: RefundError.self) {
            try await engine.declineRequest(requestID: second.id, note: nil, caller: Fixtures.staff)
        }
        #expect(again?.code == .invalidState)
        let unknown = await #expect(throws: RefundError.self) {
            try await engine.approveRequest(requestID: "rq_9_ord_q", Fixtures.options(), note: nil, caller: Fixtures.staff)
        }
        #expect(unknown?.code == .requestNotFound)
    }

    @Test func moderationOutcomes() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_m1", count: 1))
        try await engine.putOrder(Fixtures.tickets(id: "ord_m2", count: 1))
        let refunded = try await engine.moderate(orderID: "ord_m1", outcome: .invalidateRefund, note: "bot", caller: Fixtures.staff)
        #expect(refunded.reason == "moderation" && refunded.method == .original && refunded.amount == 5000)
        let cancelled = try await engine.moderate(orderID: "ord_m2", outcome: .invalidateNoRefund, note: "fraud", caller: Fixtures.staff)
        #expect(cancelled.reason == "moderation" && cancelled.method == .none && cancelled.amount == 0)
        #expect(try await engine.order("ord_m2").status == .cancelled)
    }

    @Test func selfServiceRules() async throws {
        let clock = ManualClock(Fixtures.t0)
        let engine = Fixtures.engine(clock: clock)
        let buyer = Caller.customer("cus_1")
        try await engine.putOrder(Fixtures.tickets(id: "ord_ss", count: 2))
        var options = RefundOptions(method: .balance, reason: "customer_request", selfService: true)
        // Balance only.
        options.method = .original
        let notBalance = await #expect(throws: RefundError.self) { try await engine.createRefund(orderID: "ord_ss", options, caller: buyer) }
        #expect(notBalance?.code == .init(rawValue: "self_service_closed"))
        options.method = .balance
        options.lines = ["l1"]
        let refund = try await engine.createRefund(orderID: "ord_ss", options, caller: buyer)
        #expect(refund.transactions.map(\.method) == [.balance])
        #expect(await engine.balance(customer: "cus_1", currency: .gbp) == 5000)
        // Closed inside the cut-off (24 h before the event).
        clock.set(Timestamp(iso8601: "2026-12-01T00:00:00Z")!)
        options.lines = ["l2"]
        let late = await #expect(throws: RefundError.self) { try await engine.createRefund(orderID: "ord_ss", options, caller: buyer) }
        #expect(late?.code == .init(rawValue: "self_service_closed"))
        // Only the order's own customer can use self-service.
        let stranger = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_ss", options, caller: .customer("cus_other"))
        }
        #expect(stranger?.code == .permissionDenied)
        // Staff cannot use the self-service path without the permission.
        clock.set(Fixtures.t0)
        let staffSelf = await #expect(throws: RefundError.self) { try await engine.createRefund(orderID: "ord_ss", options, caller: Fixtures.staff) }
        #expect(staffSelf?.code == .permissionDenied)
    }

    @Test func walletTopUpsDeductTheBalanceAndAreBlockedWhenSpent() async throws {
        let engine = Fixtures.engine()
        let topUp = Order(
            id: "ord_top", event: "evt_wallet", customer: "cus_w", currency: .gbp,
            lines: [OrderLine(id: "l1", kind: .walletTopUp, price: 5000)],
            tenders: [Tender(id: "t1", method: .card, amount: 5000, gatewayRef: "pi_top")])
        try await engine.putOrder(topUp)
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 5000)
        let spend = Order(
            id: "ord_spend", event: "evt_x", customer: "cus_w", currency: .gbp,
            lines: [OrderLine(id: "l1", ticketType: "tt_x", price: 3000)],
            tenders: [Tender(id: "t1", method: .wallet, amount: 3000)])
        try await engine.putOrder(spend)
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 2000)
        let spent = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_top", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        }
        #expect(spent?.code == .init(rawValue: "wallet_balance_spent"))
        // Refund the ticket back to the wallet; now the top-up is covered again and can be refunded to the card.
        try await engine.createRefund(orderID: "ord_spend", Fixtures.options(), caller: Fixtures.staff)
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 5000)
        let refund = try await engine.createRefund(orderID: "ord_top", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        #expect(refund.transactions.map(\.method) == [.card])
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 0)
    }

    @Test func balancesAreKeptPerCurrency() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Order(
            id: "ord_gbp_top", event: "evt_w", customer: "cus_fx", currency: .gbp,
            lines: [OrderLine(id: "l1", kind: .walletTopUp, price: 5000)],
            tenders: [Tender(id: "t1", method: .card, amount: 5000, gatewayRef: "pi_g")]))
        try await engine.putOrder(Order(
            id: "ord_eur_spend", event: "evt_e", customer: "cus_fx", currency: .eur,
            lines: [OrderLine(id: "l1", ticketType: "tt_e", price: 3000)],
            tenders: [Tender(id: "t1", method: .wallet, amount: 3000)]))
        #expect(await engine.balance(customer: "cus_fx", currency: .gbp) == 5000)
        #expect(await engine.balance(customer: "cus_fx", currency: .eur) == -3000)
        #expect(await engine.balances(customer: "cus_fx") == ["GBP": 5000, "EUR": -3000])
        // The euro spending does not eat into the pound top-up: it can still be refunded.
        let refund = try await engine.createRefund(orderID: "ord_gbp_top", Fixtures.options(), caller: Fixtures.staff)
        #expect(refund.amount == 5000)
        #expect(await engine.balances(customer: "cus_fx") == ["GBP": 0, "EUR": -3000])
    }

    @Test func aBalanceNeverWrapsPastInt64() async throws {
        let engine = Fixtures.engine(partitions: 1)
        func topUp(_ id: String) -> Order {
            Order(
                id: id, event: "evt_big", customer: "cus_rich", currency: .gbp,
                lines: [OrderLine(id: "l1", kind: .walletTopUp, price: Int64.max / 2 + 1)],
                tenders: [Tender(id: "t1", method: .card, amount: Int64.max / 2 + 1, gatewayRef: "pi_big")])
        }
        try await engine.putOrder(topUp("ord_big1"))
        let before = await engine.balance(customer: "cus_rich", currency: .gbp)
        let error = await #expect(throws: RefundError.self) { try await engine.putOrder(topUp("ord_big2")) }
        #expect(error?.code == .amountOverflow)
        #expect(error?.message.contains("cus_rich") == true)
        #expect(await engine.balance(customer: "cus_rich", currency: .gbp) == before)
        let missing = await #expect(throws: RefundError.self) { try await engine.order("ord_big2") }
        #expect(missing?.code == .orderNotFound)
        #expect(await engine.putOrders([topUp("ord_big3")]).map(\.error.code) == [.amountOverflow])
    }

    @Test func parentWaitsForChildren() async throws {
        let engine = Fixtures.engine(partitions: 4)
        try await engine.putOrder(Fixtures.tickets(id: "ord_parent", count: 1))
        try await engine.putOrder(Fixtures.tickets(id: "ord_child1", count: 1, parent: "ord_parent"))
        try await engine.putOrder(Fixtures.tickets(id: "ord_child2", count: 1, parent: "ord_parent"))
        let blocked = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_parent", Fixtures.options(), caller: Fixtures.staff)
        }
        #expect(blocked?.code == .init(rawValue: "child_orders_active"))
        try await engine.createRefund(orderID: "ord_child1", Fixtures.options(), caller: Fixtures.staff)
        let stillBlocked = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_parent", Fixtures.options(), caller: Fixtures.staff)
        }
        #expect(stillBlocked?.code == .init(rawValue: "child_orders_active"))
        try await engine.createRefund(orderID: "ord_child2", Fixtures.options(), caller: Fixtures.staff)
        try await engine.createRefund(orderID: "ord_parent", Fixtures.options(), caller: Fixtures.staff)
    }
}
