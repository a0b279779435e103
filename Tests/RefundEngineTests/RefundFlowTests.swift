import RefundCore
import RefundEngine
import Testing

@Suite struct RefundFlowTests {
    @Test func contractExampleThroughTheEngine() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.contractOrder())
        let refund = try await engine.createRefund(
            orderID: "ord_1", RefundOptions(method: .original, fee: .order(500), reason: "event_cancelled"),
            caller: Fixtures.staff)
        #expect(refund.id == "rf_1_ord_1")
        #expect(refund.status == .succeeded)
        #expect(refund.amount == 4135)
        #expect(refund.feeRetained == 500)
        #expect(refund.tax == 669)
        #expect(refund.lines == [RefundLine(line: "l1", amount: 4135, feeRetained: 500, tax: 669)])
        #expect(refund.transactions.map(\.amount) == [2540, 1595])
        #expect(refund.transactions.map(\.method) == [.card, .wallet])
        #expect(refund.transactions.allSatisfy { $0.attempts == 1 && $0.status == .succeeded })

        let view = try await engine.order("ord_1")
        #expect(view.status == .refunded)
        #expect(view.totals.gross == 4884)
        #expect(view.totals.refunded == 4135)
        #expect(view.totals.gross == view.totals.refunded + view.totals.outstanding + view.totals.retained + view.totals.net)
        // Wallet share goes back to the customer's balance: -1884 at checkout, +1595 refunded.
        #expect(await engine.balance(customer: "cus_9", currency: .gbp) == -1884 + 1595)
        #expect(await engine.inventoryReleased() == ["tt_ga": 1])
        let timeline = try await engine.timeline("ord_1").map(\.kind)
        #expect(timeline.first == .orderPlaced)
        #expect(timeline.contains(.refundCreated))
        #expect(timeline.contains(.attemptSucceeded))
    }

    @Test func putIsIdempotentAndImmutableAfterRefund() async throws {
        let engine = Fixtures.engine()
        let order = Fixtures.tickets(id: "ord_a", count: 2)
        try await engine.putOrder(order)
        try await engine.putOrder(order)  // identical: no-op
        var changed = order
        changed.email = "new@example.com"
        try await engine.putOrder(changed)  // no refund yet: replaced
        #expect(try await engine.order("ord_a").order.email == "new@example.com")
        try await engine.createRefund(orderID: "ord_a", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        changed.email = "other@example.com"
        let error = await #expect(throws: RefundError.self) { try await engine.putOrder(changed) }
        #expect(error?.code == .orderImmutable)
        try await engine.putOrder(Order(
            id: "ord_a", event: order.event, eventStartsAt: order.eventStartsAt, customer: order.customer,
            email: "new@example.com", currency: .gbp, lines: order.lines, tenders: order.tenders))  // identical to stored
    }

    @Test func partialRefundsThenStatus() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_p", count: 3))
        try await engine.createRefund(orderID: "ord_p", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        #expect(try await engine.order("ord_p").status == .partiallyRefunded)
        let again = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_p", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        }
        #expect(again?.code == .init(rawValue: "already_refunded"))
        try await engine.createRefund(orderID: "ord_p", Fixtures.options(), caller: Fixtures.staff)
        let view = try await engine.order("ord_p")
        #expect(view.status == .refunded)
        #expect(view.tenders[0].refunded == 15000)
        let none = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_p", Fixtures.options(), caller: Fixtures.staff)
        }
        #expect(none?.code == .nothingToRefund)
    }

    @Test func cancelWithoutMoneyAndWithMoney() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_c", count: 2))
        try await engine.putOrder(Fixtures.tickets(id: "ord_d", count: 2))
        let cancel = try await engine.cancelOrder(orderID: "ord_c", refund: false, reason: "fraud", restock: false, caller: Fixtures.staff)
        #expect(cancel.method == .none && cancel.amount == 0 && cancel.transactions.isEmpty)
        #expect(try await engine.order("ord_c").status == .cancelled)
        let view = try await engine.order("ord_c")
        #expect(view.totals.retained == 10000 && view.totals.refunded == 0)
        try await engine.cancelOrder(orderID: "ord_d", refund: true, reason: "event_cancelled", caller: Fixtures.staff)
        #expect(try await engine.order("ord_d").status == .refunded)
        #expect(await engine.inventoryReleased() == ["tt_ga": 2])  // ord_c kept its stock
    }

    @Test func offlineRefundOfAWalletShareCreditsNoBalance() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.contractOrder())
        let refund = try await engine.createRefund(orderID: "ord_1", Fixtures.options(.offline), caller: Fixtures.staff)
        #expect(refund.transactions.map(\.method) == [.card, .wallet])
        #expect(await engine.balance(customer: "cus_9", currency: .gbp) == -1884)  // only the checkout's wallet spending
    }

    @Test func offlineAndBalanceMethods() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_o", count: 2))
        let offline = try await engine.createRefund(orderID: "ord_o", Fixtures.options(.offline, lines: ["l1"]), caller: Fixtures.staff)
        #expect(offline.transactions.map(\.status) == [.succeeded])
        let balance = try await engine.createRefund(orderID: "ord_o", Fixtures.options(.balance, lines: ["l2"]), caller: Fixtures.staff)
        #expect(balance.transactions.count == 1 && balance.transactions[0].method == .balance && balance.transactions[0].tender == nil)
        #expect(await engine.balance(customer: "cus_1", currency: .gbp) == 5000)
        // The balance refund used up the card's remaining money: nothing left to send back to it.
        #expect(try await engine.order("ord_o").tenders[0].refunded == 10000)

        try await engine.putOrder(Fixtures.tickets(id: "ord_box", count: 1, customer: nil))
        let boxOffice = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_box", Fixtures.options(.balance), caller: Fixtures.staff)
        }
        #expect(boxOffice?.code == .methodNotAvailable)
    }

    @Test func idempotencyKeys() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_i", count: 2))
        var options = Fixtures.options(lines: ["l1"])
        options.idempotencyKey = "key-1"
        let first = try await engine.createRefund(orderID: "ord_i", options, caller: Fixtures.staff)
        let repeat_ = try await engine.createRefund(orderID: "ord_i", options, caller: Fixtures.staff)
        #expect(first == repeat_)
        #expect(try await engine.order("ord_i").refunds.count == 1)
        options.lines = ["l2"]
        let conflict = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_i", options, caller: Fixtures.staff)
        }
        #expect(conflict?.code == .idempotencyConflict)
    }

    @Test func permissionsAreChecked() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_perm", count: 2))
        let clerk = Caller(id: "clerk", permissions: [.refund])
        for (options, permission) in [
            (Fixtures.options(fee: .each(100)), "apply_cancellation_fee"),
            (Fixtures.options(.none), "cancel"),
            ({ var o = Fixtures.options(); o.policy = .full; return o }(), "override_fees"),
        ] {
            let error = await #expect(throws: RefundError.self) {
                try await engine.createRefund(orderID: "ord_perm", options, caller: clerk)
            }
            #expect(error?.code == .permissionDenied)
            #expect(error?.message.contains(permission) == true)
        }
        let nobody = Caller(id: "nobody", permissions: [])
        let denied = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_perm", Fixtures.options(), caller: nobody)
        }
        #expect(denied?.code == .permissionDenied)
        #expect(try await engine.order("ord_perm").refunds.isEmpty)
    }

    @Test func receiptAndResend() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.contractOrder())
        let refund = try await engine.createRefund(
            orderID: "ord_1", RefundOptions(method: .original, fee: .order(500), reason: "event_cancelled"), caller: Fixtures.staff)
        let receipt = try await engine.receipt(refundID: refund.id)
        #expect(receipt.amount == 4135 && receipt.transactions.count == 2)
        #expect(receipt.text.contains("Total refunded 41.35 GBP"))
        #expect(receipt.text.contains("Fee retained 5.00 GBP"))
        #expect(receipt.text.contains("t1 (card): 25.40 GBP, succeeded, 1 attempt"))
        let resent = try await engine.resendConfirmation(refundID: refund.id, caller: Fixtures.staff)
        #expect(resent.resentAt.count == 1)
        let events = await engine.events(after: 0)
        #expect(events.contains { $0.kind == .confirmationResent && $0.notifyEmail == "a@example.com" })
        #expect(events.contains { $0.kind == .refundAccepted && $0.notifyEmail == "a@example.com" })
        #expect(events.map(\.sequence) == events.map(\.sequence).sorted())

        try await engine.putOrder(Fixtures.tickets(id: "ord_noemail", count: 1, email: nil))
        let other = try await engine.createRefund(orderID: "ord_noemail", Fixtures.options(), caller: Fixtures.staff)
        let error = await #expect(throws: RefundError.self) {
            try await engine.resendConfirmation(refundID: other.id, caller: Fixtures.staff)
        }
        #expect(error?.code == .invalidState)
    }

    @Test func listsByOrderEventAndStatus() async throws {
        let engine = Fixtures.engine()
        for i in 0..<6 { try await engine.putOrder(Fixtures.tickets(id: "ord_l\(i)", event: i < 4 ? "evt_a" : "evt_b", count: 1)) }
        for i in 0..<6 { try await engine.createRefund(orderID: "ord_l\(i)", Fixtures.options(), caller: Fixtures.staff) }
        #expect(try await engine.refunds(orderID: "ord_l0").count == 1)
        #expect(try await engine.refunds(event: "evt_a").count == 4)
        #expect(try await engine.refunds(status: .succeeded).count == 6)
        #expect(try await engine.refunds(status: .failed).isEmpty)
        let missing = await #expect(throws: RefundError.self) { try await engine.refund("rf_9_ord_l0") }
        #expect(missing?.code == .refundNotFound)
        let garbage = await #expect(throws: RefundError.self) { try await engine.refund("nonsense") }
        #expect(garbage?.code == .refundNotFound)
    }
}
