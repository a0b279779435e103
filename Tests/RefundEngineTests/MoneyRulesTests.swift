import Foundation
import RefundCore
import RefundEngine
import Testing

/// Issue 7: money rules that let an order, a refund or a report say something that did not happen.
@Suite struct MoneyRulesTests {
    // MARK: Item 6: a free or comp order with paid tenders

    @Test(arguments: [OrderSource.free, .comp])
    func aFreeOrCompOrderWithPaidTendersIsRejectedAtPut(source: OrderSource) async throws {
        let engine = Fixtures.engine()
        var order = Fixtures.tickets(id: "ord_comp", count: 1, price: 3000)
        order.source = source
        let error = await #expect(throws: RefundError.self) { try await engine.putOrder(order) }
        #expect(error?.code == .orderInvalid)
        #expect(error?.message.contains("source") == true && error?.message.contains("tenders") == true)
        let missing = await #expect(throws: RefundError.self) { try await engine.order("ord_comp") }
        #expect(missing?.code == .orderNotFound)
        #expect(await engine.putOrders([order]).map(\.error.code) == [.orderInvalid])

        // Without money on its tenders it is a valid free order (and cancellable with method none).
        var free = Fixtures.tickets(id: "ord_free", count: 1, price: 0)
        free.source = source
        try await engine.putOrder(free)
        free.tenders = []
        try await engine.putOrder(free)
        let cancelled = try await engine.createRefund(orderID: "ord_free", Fixtures.options(.none), caller: Fixtures.staff)
        #expect(cancelled.status == .succeeded && cancelled.amount == 0)

        // A paid order cannot be replaced by a comp one that keeps its tenders either.
        try await engine.putOrder(Fixtures.tickets(id: "ord_paid", count: 1, price: 3000))
        var replaced = Fixtures.tickets(id: "ord_paid", count: 1, price: 3000)
        replaced.source = source
        let replace = await #expect(throws: RefundError.self) { try await engine.putOrder(replaced) }
        #expect(replace?.code == .orderInvalid)
        #expect(try await engine.order("ord_paid").order.source == .paid)
    }
}

// MARK: Item 13: offline refunds of a wallet share, one truth in code and docs

extension MoneyRulesTests {
    @Test func anOfflineRefundOfAWalletShareCreditsNothingAndTheDocsSaySo() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.contractOrder(id: "ord_off"))
        let before = await engine.balance(customer: "cus_9", currency: .gbp)
        let refund = try await engine.createRefund(orderID: "ord_off", Fixtures.options(.offline), caller: Fixtures.staff)
        let wallet = try #require(refund.transactions.first { $0.method == .wallet })
        #expect(wallet.amount > 0 && wallet.status == .succeeded)
        #expect(await engine.balance(customer: "cus_9", currency: .gbp) == before)

        // docs/money.md: every sentence about offline refunds and credit says that nothing is credited.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/money.md"), encoding: .utf8)
        let prose = text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "  ", with: " ")
        var checked = 0
        for sentence in prose.components(separatedBy: ". ") {
            let lower = sentence.lowercased()
            guard lower.contains("offline"), lower.contains("credit") else { continue }
            checked += 1
            #expect(lower.contains("credits nothing") || lower.contains("credit nothing"), "docs/money.md: \(sentence)")
        }
        #expect(checked >= 2)
    }
}

// MARK: Item 5: refund requests follow the self-service caller rule

extension MoneyRulesTests {
    @Test func onlyTheOrdersCustomerOrStaffMayFileARefundRequest() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_rq", count: 2, customer: "cus_rq"))
        let strangers: [Caller] = [
            Caller(id: "cus_other", permissions: [.selfService]),  // another buyer
            Caller(id: "cus_rq", permissions: []),  // the right id, but no permission to act as the buyer
            Caller(id: "cus_rq", permissions: [.cancel, .recordRecovery]),  // staff-ish, without refund
        ]
        for caller in strangers {
            let error = await #expect(throws: RefundError.self) {
                try await engine.requestRefund(orderID: "ord_rq", lines: nil, reason: "not mine", caller: caller)
            }
            #expect(error?.code == .permissionDenied, "\(caller)")
        }
        #expect(try await engine.order("ord_rq").requests.isEmpty)
        #expect(await engine.openRequests().isEmpty)

        let own = try await engine.requestRefund(orderID: "ord_rq", lines: ["l1"], reason: "cannot go", caller: .customer("cus_rq"))
        #expect(own.requestedBy == "cus_rq")
        let onBehalf = try await engine.requestRefund(
            orderID: "ord_rq", lines: ["l2"], reason: "phoned in", caller: Caller(id: "ops_7", permissions: [.refund]))
        #expect(onBehalf.requestedBy == "ops_7")

        // A box-office order has no customer: no buyer can file on it, staff still can.
        try await engine.putOrder(Fixtures.tickets(id: "ord_box", count: 1, customer: nil))
        let boxOffice = await #expect(throws: RefundError.self) {
            try await engine.requestRefund(orderID: "ord_box", lines: nil, reason: "mine?", caller: .customer("cus_rq"))
        }
        #expect(boxOffice?.code == .permissionDenied)
        _ = try await engine.requestRefund(orderID: "ord_box", lines: nil, reason: "at the desk", caller: Fixtures.staff)
    }
}

// MARK: Item 3: bulk amounts by what became of the money

extension MoneyRulesTests {
    /// Six orders of 2900, one settled as failed: refunded 14500 and failed 2900, never refunded 17400; pending
    /// amounts while pending; the summary event and the final update say the same.
    @Test func bulkAmountsCountOnlySucceededMoneyAsRefunded() async throws {
        let engine = Fixtures.engine(partitions: 3, gateway: SimulatedGateway(.init(neverConfirm: true)))
        for i in 1...6 { try await engine.putOrder(Fixtures.tickets(id: "ord_b\(i)", event: "evt_six", count: 1, price: 2900)) }
        let started = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_six"], options: RefundOptions(method: .original, reason: "event_cancelled")),
            caller: Fixtures.staff)
        #expect(started.state == .running && started.pending == 6 && started.succeeded == 0)
        #expect(started.currency == "GBP" && started.refunded == 0 && started.pendingAmount == 17_400 && started.failedAmount == 0)
        #expect(started.byCurrency == ["GBP": BulkAmounts(pendingAmount: 17_400)])

        let refunds = try await engine.refunds(event: "evt_six", limit: 100).sorted { $0.orderID < $1.orderID }
        #expect(refunds.count == 6)
        try await engine.settle(refundID: refunds[0].id, tender: "t1", succeeded: false, failureCode: "expired_card")
        let midway = try engine.bulkStatus(jobID: started.jobID)
        #expect(midway.failed == 1 && midway.pending == 5)
        #expect(midway.refunded == 0 && midway.pendingAmount == 14_500 && midway.failedAmount == 2_900)
        for refund in refunds.dropFirst() { try await engine.settle(refundID: refund.id, tender: "t1", succeeded: true) }

        let final = try engine.bulkStatus(jobID: started.jobID)
        #expect(final.state == .completed && final.succeeded == 5 && final.failed == 1 && final.pending == 0)
        #expect(final.refunded == 14_500 && final.failedAmount == 2_900 && final.pendingAmount == 0)
        #expect(final.byCurrency == ["GBP": BulkAmounts(refunded: 14_500, failedAmount: 2_900)])
        #expect(final.failedOrders.map(\.orderID) == [refunds[0].orderID])

        // The events say the same: the summary (everything still pending) and the final update.
        let events = await engine.events(after: 0, limit: 1_000).filter { $0.jobID == started.jobID }
        let summary = try #require(events.first { $0.kind == .bulkSummary })
        #expect(summary.amount == 0)
        #expect(summary.text?.contains("GBP:refunded=0,pending_amount=17400,failed_amount=0,fee_retained=0") == true)
        let update = try #require(events.first { $0.kind == .bulkUpdate })
        #expect(update.amount == 14_500)
        #expect(update.text?.contains("failed=1") == true)
        #expect(update.text?.contains("GBP:refunded=14500,pending_amount=0,failed_amount=2900,fee_retained=0") == true)
        #expect(update.text?.contains("state=completed") == true)

        // A retry of the failed one that succeeds moves its money to refunded.
        try await engine.retry(refundID: refunds[0].id, caller: Fixtures.staff)
        #expect(try engine.bulkStatus(jobID: started.jobID).pendingAmount == 2_900)
        try await engine.settle(refundID: refunds[0].id, tender: "t1", succeeded: true)
        let retried = try engine.bulkStatus(jobID: started.jobID)
        #expect(retried.refunded == 17_400 && retried.failedAmount == 0 && retried.failed == 0 && retried.succeeded == 6)
    }

    @Test func bulkAmountsSplitACardFailureFromAWalletShareThatSucceeded() async throws {
        let gateway = SimulatedGateway(.init(neverConfirm: true))
        let engine = Fixtures.engine(partitions: 2, gateway: gateway)
        try await engine.putOrder(Fixtures.contractOrder(id: "ord_mix", event: "evt_mix"))  // card 3000 + wallet 1884
        var euro = Fixtures.tickets(id: "ord_eur", event: "evt_mix", count: 1, price: 1000)
        euro.currency = .eur
        euro.tenders = [Tender(id: "t1", method: .cash, amount: 1000)]
        try await engine.putOrder(euro)
        let status = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_mix"], options: RefundOptions(method: .original, fee: .order(500), reason: "event_cancelled")),
            caller: Fixtures.staff)
        // The worked example: 4135 refunded, 2540 to the card (pending), 1595 to the wallet (succeeded).
        #expect(status.currency == nil && status.refunded == 0 && status.pendingAmount == 0)
        #expect(status.byCurrency["GBP"] == BulkAmounts(refunded: 1_595, pendingAmount: 2_540, feeRetained: 500))
        #expect(status.byCurrency["EUR"] == BulkAmounts(refunded: 500, feeRetained: 500))
        let refund = try #require(try await engine.refunds(orderID: "ord_mix").first)
        try await engine.settle(refundID: refund.id, tender: "t1", succeeded: false, failureCode: "expired_card")
        let final = try engine.bulkStatus(jobID: status.jobID)
        #expect(final.state == .completed && final.failed == 1)
        #expect(final.byCurrency["GBP"] == BulkAmounts(refunded: 1_595, failedAmount: 2_540, feeRetained: 500))
    }
}

// MARK: Item 4: cancelling a spent wallet top-up

extension MoneyRulesTests {
    /// Top-up 5000, spend 3000: cancelling the top-up line (method none, or order.cancel without money) must not
    /// leave the credit behind. It is blocked while the balance does not cover the top-up, and once it does, the
    /// cancellation takes the credit back.
    @Test func cancellingATopUpTakesItsCreditBackAndIsBlockedWhenSpent() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Order(
            id: "ord_top", event: "evt_wallet", customer: "cus_w", currency: .gbp,
            lines: [OrderLine(id: "l1", kind: .walletTopUp, price: 5000)],
            tenders: [Tender(id: "t1", method: .card, amount: 5000, gatewayRef: "pi_top")]))
        try await engine.putOrder(Order(
            id: "ord_spend", event: "evt_x", customer: "cus_w", currency: .gbp,
            lines: [OrderLine(id: "l1", ticketType: "tt_x", price: 3000)],
            tenders: [Tender(id: "t1", method: .wallet, amount: 3000)]))
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 2000)

        for method in RefundMethod.allCases {
            let spent = await #expect(throws: RefundError.self) {
                try await engine.createRefund(orderID: "ord_top", Fixtures.options(method, lines: ["l1"]), caller: Fixtures.staff)
            }
            #expect(spent?.code == .init(rawValue: "wallet_balance_spent"), "\(method)")
        }
        let cancel = await #expect(throws: RefundError.self) {
            try await engine.cancelOrder(orderID: "ord_top", refund: false, reason: "fraud", caller: Fixtures.staff)
        }
        // The whole order: its one line is left out as spent, so nothing is left to cancel.
        #expect(cancel?.code == .nothingToRefund && cancel?.blocked == [BlockedItem(line: "l1", reason: .walletBalanceSpent)])
        let preview = try await engine.preview(orderID: "ord_top", Fixtures.options(.none, lines: ["l1"]), caller: Fixtures.staff)
        #expect(!preview.refundable && preview.blocked == [BlockedItem(line: "l1", reason: .walletBalanceSpent)])
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 2000)
        #expect(try await engine.order("ord_top").lines[0].status == .active)

        // The ticket goes back to the wallet: the balance covers the top-up again, and cancelling it (no money
        // back to the card) takes the whole credit back.
        try await engine.createRefund(orderID: "ord_spend", Fixtures.options(), caller: Fixtures.staff)
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 5000)
        let cancelled = try await engine.createRefund(orderID: "ord_top", Fixtures.options(.none, lines: ["l1"]), caller: Fixtures.staff)
        #expect(cancelled.amount == 0 && cancelled.transactions.isEmpty)
        #expect(await engine.balance(customer: "cus_w", currency: .gbp) == 0)
        let totals = try await engine.order("ord_top").totals
        #expect(totals.retained == 5000 && totals.refunded == 0 && totals.net == 0)
    }
}

// MARK: Item 7: recovery actions are a log

extension MoneyRulesTests {
    /// `contacted_buyer` is a step, not an end: more steps may follow, the refund can be retried, and it can be
    /// closed as `refunded_externally` or `written_off`. A closing action ends the log. The log survives a restart
    /// (replay and snapshot).
    @Test func recoveryActionsAreALogUntilTheRefundIsSettledOrClosed() async throws {
        let dir = TemporaryDirectory("recovery-log")
        let gateway = SimulatedGateway(.init(neverConfirm: true))
        var engine = try await DurabilityTests.open(dir, gateway: gateway)
        try await engine.putOrder(Fixtures.tickets(id: "ord_rc", count: 1))
        let refund = try await engine.createRefund(orderID: "ord_rc", Fixtures.options(), caller: Fixtures.staff)
        try await engine.settle(refundID: refund.id, tender: "t1", succeeded: false, failureCode: "expired_card")
        #expect(await engine.attention().map(\.id) == [refund.id])

        var recovered = try await engine.recover(refundID: refund.id, action: .contactedBuyer, note: "emailed", caller: Fixtures.staff)
        #expect(recovered.recoveries.map(\.action) == [.contactedBuyer] && recovered.recovery == nil)
        #expect(await engine.attention().isEmpty)  // someone is on it
        recovered = try await engine.recover(refundID: refund.id, action: .contactedBuyer, note: "phoned", caller: Fixtures.staff)
        recovered = try await engine.recover(refundID: refund.id, action: .other, note: "new card details asked", caller: Fixtures.staff)
        #expect(recovered.recoveries.map(\.action) == [.contactedBuyer, .contactedBuyer, .other])
        #expect(recovered.recoveries.map(\.note) == ["emailed", "phoned", "new card details asked"])
        #expect(try await engine.order("ord_rc").totals.outstanding == 5000)  // still owed

        // A retry after contacting the buyer: allowed; a failure again puts it back in the attention queue.
        let retried = try await engine.retry(refundID: refund.id, caller: Fixtures.staff)
        #expect(retried.status == .pending)
        let pendingRecovery = await #expect(throws: RefundError.self) {
            try await engine.recover(refundID: refund.id, action: .other, note: "while pending", caller: Fixtures.staff)
        }
        #expect(pendingRecovery?.code == .invalidState)
        try await engine.settle(refundID: refund.id, tender: "t1", succeeded: false, failureCode: "expired_card")
        #expect(await engine.attention().map(\.id) == [refund.id])
        let before = try await engine.refund(refund.id)
        #expect(before.recoveriesBeforeRetry == 3 && before.currentRecoveries.isEmpty)

        // Restart (replay of the log): the same log, the same queue.
        try await engine.close()
        engine = try await DurabilityTests.open(dir, gateway: gateway)
        #expect(try await engine.refund(refund.id) == before)
        #expect(await engine.attention().map(\.id) == [refund.id])

        // Closed as refunded externally: out of the queue for good, counted as refunded, nothing may follow.
        let closed = try await engine.recover(
            refundID: refund.id, action: .refundedExternally, note: "bank transfer", caller: Fixtures.staff)
        #expect(closed.recovery?.action == .refundedExternally && closed.recoveries.count == 4)
        #expect(await engine.attention().isEmpty)
        let totals = try await engine.order("ord_rc").totals
        #expect(totals.refunded == 5000 && totals.outstanding == 0)
        for action in RecoveryAction.allCases {
            let after = await #expect(throws: RefundError.self) {
                try await engine.recover(refundID: refund.id, action: action, note: "again", caller: Fixtures.staff)
            }
            #expect(after?.code == .invalidState)
        }
        let retryClosed = await #expect(throws: RefundError.self) { try await engine.retry(refundID: refund.id, caller: Fixtures.staff) }
        #expect(retryClosed?.code == .invalidState)

        // Snapshot, then restart from it: the log and its retry mark are in the snapshot too.
        let final = try await engine.refund(refund.id)
        try await engine.snapshot()
        try await engine.close()
        engine = try await DurabilityTests.open(dir, gateway: gateway)
        #expect(try await engine.refund(refund.id) == final)
        try await engine.close()
    }

    @Test(arguments: [RecoveryAction.writtenOff, .refundedExternally])
    func aFailedRefundCanBeClosedAfterContactingTheBuyer(closing: RecoveryAction) async throws {
        let gateway = SimulatedGateway()
        gateway.script([.failed(code: "card_expired", retryable: false)])
        let engine = Fixtures.engine(gateway: gateway)
        try await engine.putOrder(Fixtures.tickets(id: "ord_wo", count: 1))
        let refund = try await engine.createRefund(orderID: "ord_wo", Fixtures.options(), caller: Fixtures.staff)
        #expect(refund.status == .failed)
        try await engine.recover(refundID: refund.id, action: .contactedBuyer, note: "no answer", caller: Fixtures.staff)
        let closed = try await engine.recover(refundID: refund.id, action: closing, note: "closing it", caller: Fixtures.staff)
        #expect(closed.recoveries.map(\.action) == [.contactedBuyer, closing] && closed.recovery?.action == closing)
        let totals = try await engine.order("ord_wo").totals
        #expect(totals.outstanding == 0)
        #expect(closing == .writtenOff ? totals.retained == 5000 : totals.refunded == 5000)
    }
}
