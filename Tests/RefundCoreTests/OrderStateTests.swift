import Testing

@testable import RefundCore

/// `OrderState.apply`: sequences of changes, status, totals, tender accounting, failures, retries and recovery.
@Suite struct OrderStateTests {
    let later = Fixtures.now.adding(milliseconds: 60_000)

    @Test func placedOrderIsCompletedAndAllNet() {
        let state = Fixtures.place(Fixtures.contractOrder())
        #expect(state.status == .completed)
        #expect(state.lineStatus == [.active])
        #expect(state.tenderRefunded == [0, 0])
        #expect(state.tenderRemaining == [3000, 1884])
        #expect(state.totals == OrderTotals(gross: 4884, refunded: 0, outstanding: 0, retained: 0, net: 4884))
        #expect(state.timeline.map(\.kind) == [.orderPlaced])
        #expect(!state.isFullyRefunded)
        #expect(state.activeLineCount == 1)
    }

    @Test func contractExampleAppliedAndSettled() throws {
        var state = Fixtures.place(Fixtures.contractOrder())
        let (number, effects) = try state.refund(Fixtures.options(fee: .order(500)))
        #expect(number == 1)
        #expect(state.refunds[0].id == "rf_1_ord_1")
        #expect(state.refunds[0].status == .pending)
        #expect(state.hasPendingTransaction)
        #expect(state.tenderRefunded == [2540, 1595])
        // Wallet money goes straight back to the customer's balance; the ticket type is released.
        #expect(effects.balanceDelta == 1595)
        #expect(effects.released == ["tt_ga"])
        #expect(state.status == .refunded)
        // Refunded 4135; kept: the 500 fee, the platform fee 99 and the booking fee 150.
        #expect(state.totals == OrderTotals(gross: 4884, refunded: 4135, outstanding: 0, retained: 749, net: 0))
        expectTotalsIdentity(state)

        state.resolvePending(refund: 1, .succeeded(reference: "re_1"))
        #expect(state.refunds[0].status == .succeeded)
        #expect(state.refunds[0].transactions[0].attempts == 1)
        #expect(state.refunds[0].transactions[0].gatewayRef == "re_1")
        #expect(state.refunds[0].transactions[0].settledAt == Fixtures.now)
        #expect(state.refunds[0].transactions[0].nextAttemptAt == nil)
        #expect(!state.hasPendingTransaction)
        #expect(state.isFullyRefunded)
        #expect(state.timeline.map(\.kind) == [.orderPlaced, .refundCreated, .attemptSucceeded])
        expectTotalsIdentity(state)
    }

    @Test func statusTransitionsCompletedPartiallyRefundedRefunded() throws {
        var state = Fixtures.place(Fixtures.order(bookingFee: 200, lines: Fixtures.tickets([1000, 2000, 3000])))
        #expect(state.status == .completed)
        try state.refund(Fixtures.options(lines: ["l2"], method: .offline))
        #expect(state.status == .partiallyRefunded)
        #expect(state.lineStatus == [.active, .refunded, .active])
        expectTotalsIdentity(state)
        #expect(state.totals.net == 1000 + 3000 + 200)
        try state.refund(Fixtures.options(lines: ["l1"], method: .offline))
        #expect(state.status == .partiallyRefunded)
        try state.refund(Fixtures.options(lines: ["l3"], method: .offline, includeBookingFee: true))
        #expect(state.status == .refunded)
        #expect(state.isFullyRefunded)
        #expect(state.totals == OrderTotals(gross: 6200, refunded: 6200, outstanding: 0, retained: 0, net: 0))
        #expect(state.tenderRefunded == state.order.tenders.map(\.amount))
    }

    @Test func cancelledWhenEveryLineIsRemovedWithoutMoney() throws {
        var state = Fixtures.place(Fixtures.order(bookingFee: 100, lines: Fixtures.tickets([1000, 2000])))
        try state.refund(Fixtures.options(lines: ["l1"], method: .none))
        #expect(state.status == .partiallyRefunded)
        #expect(state.lineStatus == [.cancelled, .active])
        #expect(state.totals == OrderTotals(gross: 3100, refunded: 0, outstanding: 0, retained: 1000, net: 2100))
        try state.refund(Fixtures.options(method: .none))
        #expect(state.status == .cancelled)
        #expect(state.totals == OrderTotals(gross: 3100, refunded: 0, outstanding: 0, retained: 3100, net: 0))
        #expect(state.tenderRefunded == [0])
        #expect(state.timeline.last?.kind == .cancellationCreated)
        #expect(state.isFullyRefunded)
    }

    @Test func mixedRefundAndCancellationIsRefunded() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 2000])))
        try state.refund(Fixtures.options(lines: ["l1"], method: .none))
        try state.refund(Fixtures.options(lines: ["l2"], method: .offline))
        #expect(state.status == .refunded)
        expectTotalsIdentity(state)
    }

    @Test func finalFailureIsOutstandingThenRetriedAndSucceeds() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 2000]), tenders: [.card]))
        try state.refund(Fixtures.options(lines: ["l2"]))
        #expect(state.tenderRefunded == [2000])
        state.resolvePending(refund: 1, .failed(code: "card_expired", retryable: false, retryAt: nil), at: later)
        var transaction = state.refunds[0].transactions[0]
        #expect(transaction.status == .failed)
        #expect(transaction.attempts == 1)
        #expect(transaction.failures == [FailedAttempt(attempt: 1, at: later, code: "card_expired", retryable: false)])
        #expect(state.refunds[0].status == .failed)
        #expect(state.refunds[0].needsAttention)
        // The card's share stays claimed: it is still owed (a retry sends the same amount again).
        #expect(state.tenderRefunded == [2000])
        #expect(state.tenderRemaining == [1000])
        #expect(!state.hasPendingTransaction)
        #expect(!state.isFullyRefunded)
        #expect(state.totals == OrderTotals(gross: 3000, refunded: 0, outstanding: 2000, retained: 0, net: 1000))
        expectTotalsIdentity(state)

        state.apply(.retried(refund: 1, at: later, by: "staff_1"))
        transaction = state.refunds[0].transactions[0]
        #expect(transaction.status == .pending)
        #expect(transaction.nextAttemptAt == later)
        #expect(transaction.settledAt == nil)
        #expect(state.tenderRefunded == [2000])
        #expect(state.totals.refunded == 2000)
        #expect(state.totals.outstanding == 0)
        expectTotalsIdentity(state)

        state.resolvePending(refund: 1, .succeeded(reference: "re_2"), at: later)
        transaction = state.refunds[0].transactions[0]
        #expect(transaction.status == .succeeded)
        #expect(transaction.attempts == 2)
        #expect(transaction.failures.count == 1, "every attempt is kept")
        #expect(!state.refunds[0].needsAttention)
        #expect(
            state.timeline.map(\.kind) == [
                .orderPlaced, .refundCreated, .attemptFailed, .refundRetried, .attemptSucceeded,
            ])
        expectTotalsIdentity(state)
        expectTendersWithinCaptured(state)
    }

    @Test func retryableFailureStaysPendingWithTheNextAttemptScheduled() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000]), tenders: [.card]))
        try state.refund(Fixtures.options())
        let retryAt = later.adding(milliseconds: 2000)
        state.resolvePending(refund: 1, .failed(code: "gateway_timeout", retryable: true, retryAt: retryAt), at: later)
        let transaction = state.refunds[0].transactions[0]
        #expect(transaction.status == .pending)
        #expect(transaction.nextAttemptAt == retryAt)
        #expect(!transaction.awaitingGateway)
        #expect(transaction.failures.map(\.code) == ["gateway_timeout"])
        #expect(state.tenderRefunded == [1000])
        #expect(state.timeline.last?.kind == .retryScheduled)
        expectTotalsIdentity(state)
    }

    @Test func acceptedThenSettledLater() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000]), tenders: [.card]))
        try state.refund(Fixtures.options())
        state.apply(.attemptResult(refund: 1, transaction: 0, result: .accepted(reference: "re_9"), at: later))
        #expect(state.refunds[0].transactions[0].awaitingGateway)
        #expect(state.refunds[0].transactions[0].attempts == 1)
        #expect(state.hasPendingTransaction)
        state.apply(.settled(refund: 1, transaction: 0, result: .succeeded(reference: nil), at: later))
        let transaction = state.refunds[0].transactions[0]
        #expect(transaction.status == .succeeded)
        #expect(transaction.attempts == 1, "a settlement is not a new attempt")
        #expect(transaction.gatewayRef == "re_9")
        #expect(state.timeline.map(\.kind).suffix(2) == [.attemptAccepted, .attemptSucceeded])
    }

    @Test func settledAsFailedKeepsTheTenderClaimed() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000]), tenders: [.card]))
        try state.refund(Fixtures.options())
        state.apply(.attemptResult(refund: 1, transaction: 0, result: .accepted(reference: nil), at: later))
        state.apply(.settled(refund: 1, transaction: 0, result: .failed(code: "declined", retryable: false, retryAt: nil), at: later))
        #expect(state.refunds[0].status == .failed)
        #expect(state.tenderRefunded == [1000])
        #expect(state.totals.outstanding == 1000)
        expectTotalsIdentity(state)
    }

    @Test(arguments: RecoveryAction.allCases)
    func recoveryLeavesTheAttentionQueueAndKeepsTheTotalsIdentity(action: RecoveryAction) throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 500]), tenders: [.card]))
        try state.refund(Fixtures.options(lines: ["l1"]))
        state.resolvePending(refund: 1, .failed(code: "declined", retryable: false, retryAt: nil))
        let recovery = Recovery(action: action, note: "called them", by: "staff_1", at: later)
        state.apply(.recovered(refund: 1, recovery))
        #expect(state.refunds[0].recoveries == [recovery])
        // Only a closing action is the refund's `recovery`; a step (contacted_buyer, other) leaves it open.
        #expect(state.refunds[0].recovery == (action.closes ? recovery : nil))
        #expect(!state.refunds[0].needsAttention)
        #expect(state.refunds[0].status == .failed)
        #expect(state.timeline.last?.kind == .refundRecovered)
        #expect(state.timeline.last?.detail == "\(action.rawValue): called them")
        let totals = state.totals
        switch action {
        case .refundedExternally:
            #expect(totals.refunded == 1000 && totals.outstanding == 0 && totals.retained == 0)
        case .writtenOff:
            #expect(totals.refunded == 0 && totals.outstanding == 0 && totals.retained == 1000)
        case .contactedBuyer, .other:
            #expect(totals.refunded == 0 && totals.retained == 0)
        }
        expectTotalsIdentity(state)
        // A closed failure no longer holds the parent back; one still owed (a step only) does.
        try state.refund(Fixtures.options(lines: ["l2"], method: .offline))
        #expect(state.isFullyRefunded == action.closes)
    }

    // MARK: Tender accounting

    @Test func balanceRefundsConsumeTheTendersProportionally() throws {
        let order = Fixtures.order(lines: Fixtures.tickets([1000, 3000]), tenders: [.card, .wallet], tenderWeights: [3, 1])
        var state = Fixtures.place(order)
        let (_, effects) = try state.refund(Fixtures.options(lines: ["l2"], method: .balance))
        #expect(effects.balanceDelta == 3000)
        #expect(state.tenderRefunded == (try Allocation.split(3000, by: [3000, 1000])))
        expectTendersWithinCaptured(state)
        try state.refund(Fixtures.options(lines: ["l1"]))
        state.resolvePending(refund: 2, .succeeded(reference: nil))
        #expect(state.tenderRefunded == [3000, 1000])
        expectTotalsIdentity(state)
    }

    /// Contract: a failed refund stays in the attention queue until `refund.retry` (same amount) succeeds; money
    /// must never go back to a tender beyond what it captured. Here a card transaction fails, a second refund of
    /// the same order is then made (the order has no pending transaction, so it is allowed), and the first is
    /// retried afterwards.
    @Test func failedTransactionsAmountIsNotReusedByALaterRefund() throws {
        let order = Fixtures.order(lines: Fixtures.tickets([50, 50]), tenders: [.card, .cash], tenderWeights: [1, 1])
        #expect(order.tenders.map(\.amount) == [50, 50])
        var state = Fixtures.place(order)
        try state.refund(Fixtures.options(lines: ["l1"]))  // card 25 (pending), cash 25
        #expect(state.refunds[0].transactions.map(\.amount) == [25, 25])
        state.resolvePending(refund: 1, .failed(code: "card_expired", retryable: false, retryAt: nil))
        #expect(state.refunds[0].needsAttention)

        // The second refund must not claim the card's 25 that refund 1 still owes.
        try state.refund(Fixtures.options(lines: ["l2"]))
        #expect(state.refunds[1].transactions.map(\.amount) == [25, 25])
        state.resolvePending(refund: 2, .succeeded(reference: nil))
        expectTendersWithinCaptured(state)

        state.apply(.retried(refund: 1, at: later, by: "staff_1"))
        state.resolvePending(refund: 1, .succeeded(reference: nil), at: later)
        expectTendersWithinCaptured(state)
        var cardTotal: Int64 = 0
        for refund in state.refunds {
            for transaction in refund.transactions where transaction.tender == "t1" && transaction.status == .succeeded {
                cardTotal += transaction.amount
            }
        }
        #expect(cardTotal <= 50, "the card captured 50 but \(cardTotal) went back to it")
        expectTotalsIdentity(state)
    }

    @Test func tenderRemainingIsCapturedMinusRefunded() throws {
        var state = Fixtures.place(Fixtures.contractOrder())
        try state.refund(Fixtures.options(method: .offline, includeProcessingFees: false))
        for i in state.order.tenders.indices {
            #expect(state.tenderRemaining[i] == state.order.tenders[i].amount - state.tenderRefunded[i])
        }
        #expect(state.tenderRefunded.reduce(0, +) == 4500)
    }

    // MARK: Effects

    @Test func restockReleasesOneUnitPerRefundedTicket() throws {
        var lines = Fixtures.tickets([100, 100, 100])
        lines[1].ticketType = "tt_vip"
        lines[2].kind = .product
        lines[2].ticketType = "tt_shirt"
        var state = Fixtures.place(Fixtures.order(lines: lines))
        let (_, effects) = try state.refund(Fixtures.options(method: .offline))
        #expect(effects.released == ["tt_ga", "tt_vip"])

        var kept = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([100])))
        let (_, none) = try kept.refund(Fixtures.options(method: .none, restock: false))
        #expect(none.released.isEmpty)
        #expect(kept.refunds[0].restock == false)
    }

    @Test func walletTopUpsAndWalletTendersMoveTheBalance() throws {
        var lines = Fixtures.tickets([1000, 2000])
        lines[1].kind = .walletTopUp
        let order = Fixtures.order(lines: lines, tenders: [.card, .wallet], tenderWeights: [2, 1])
        let placement = OrderState.placementEffects(of: order)
        #expect(placement.customer == "cus_9")
        #expect(placement.balanceDelta == 2000 - 1000)
        var state = Fixtures.place(order)
        let (_, effects) = try state.refund(
            Fixtures.options(lines: ["l2"], method: .offline), context: Fixtures.context(balance: 2000))
        // The top-up is taken back (−2000). The wallet tender's share of an offline refund is handed back outside
        // the engine, so it credits nothing; with method original it goes back to the wallet.
        let walletShare = state.refunds[0].transactions.first { $0.method == .wallet }?.amount ?? 0
        #expect(walletShare > 0)
        #expect(effects.balanceDelta == -2000)
        var online = Fixtures.place(order)
        let (_, originalEffects) = try online.refund(
            Fixtures.options(lines: ["l2"], method: .original), context: Fixtures.context(balance: 2000))
        let onlineWallet = online.refunds[0].transactions.first { $0.method == .wallet }?.amount ?? 0
        #expect(originalEffects.balanceDelta == -2000 + onlineWallet)
    }

    @Test func boxOfficeOrdersHaveNoBalanceEffects() {
        let order = Fixtures.order(customer: nil, lines: Fixtures.tickets([1000]), tenders: [.cash])
        #expect(OrderState.placementEffects(of: order).balanceDelta == 0)
        #expect(OrderState.placementEffects(of: order).customer == nil)
    }

    // MARK: Other changes

    @Test func placedResetsAndReplacedKeepsTheTimeline() {
        var state = Fixtures.place(Fixtures.contractOrder())
        var changed = Fixtures.contractOrder()
        changed.event = "evt_2"
        changed.customer = "cus_10"
        let effects = state.apply(.replaced(changed, at: later, by: "checkout"))
        #expect(state.order == changed)
        #expect(state.timeline.map(\.kind) == [.orderPlaced, .orderReplaced])
        #expect(state.placedAt == Fixtures.now)
        #expect(effects.movedFromEvent == "evt_1")
        #expect(effects.previousCustomer == "cus_9")
        #expect(effects.previousBalanceDelta == 1884)
        #expect(effects.balanceDelta == -1884)

        let placed = state.apply(.placed(Fixtures.contractOrder(), at: later, by: "checkout"))
        #expect(state == OrderState(placing: Fixtures.contractOrder(), at: later, by: "checkout"))
        #expect(placed.balanceDelta == -1884)
    }

    @Test func idempotencyKeysAreRemembered() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 2000])))
        var options = Fixtures.options(lines: ["l1"], method: .offline)
        options.idempotencyKey = "key-1"
        try state.refund(options)
        #expect(state.idempotency["key-1"] == OrderState.IdempotentRefund(options: options.withoutIdempotencyKey, refund: 1))
        #expect(state.idempotency["key-1"]?.options.idempotencyKey == nil)
    }

    @Test func requestsDisputesAndResends() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000])))
        let request = RefundRequest(
            id: RequestID.make(order: "ord_1", number: 1), orderID: "ord_1", lines: ["l1"], reason: "cannot attend",
            requestedBy: "cus_9", createdAt: Fixtures.now)
        state.apply(.requestCreated(request))
        #expect(state.requests == [request])
        state.apply(.requestDecided(request: 1, approved: false, note: "too late", refundID: nil, at: later, by: "staff_1"))
        #expect(state.requests[0].status == .declined)
        #expect(state.requests[0].adminNote == "too late")
        #expect(state.requests[0].decidedBy == "staff_1")

        state.apply(.disputeOpened(reason: nil, at: Fixtures.now, by: "gateway"))
        state.apply(.disputeClosed(outcome: .lost, note: "chargeback", at: later, by: "staff_1"))
        #expect(state.disputes.count == 1)
        #expect(state.disputes[0].outcome == .lost)
        #expect(!state.disputes[0].isOpen)

        try state.refund(Fixtures.options(method: .offline))
        state.apply(.confirmationResent(refund: 1, at: later, by: "staff_1"))
        #expect(state.refunds[0].resentAt == [later])
        #expect(state.refund(number: 1)?.id == "rf_1_ord_1")
        #expect(state.refund(number: 0) == nil)
        #expect(state.refund(number: 2) == nil)
        #expect(
            state.timeline.map(\.kind) == [
                .orderPlaced, .requestCreated, .requestDeclined, .disputeOpened, .disputeClosed, .refundCreated,
                .confirmationResent,
            ])
    }

    @Test func refundStatusIsDerived() {
        func refund(_ statuses: [TransactionStatus]) -> Refund {
            Refund(
                id: "rf_1_o", orderID: "o", method: .original, amount: 0, feeRetained: 0, tax: 0, bookingFee: 0,
                reason: "x", note: nil, createdAt: Fixtures.now, createdBy: "s", restock: true, lines: [],
                transactions: statuses.map {
                    RefundTransaction(tender: "t", method: .card, amount: 1, status: $0, attempts: 1)
                })
        }
        #expect(refund([]).status == .succeeded)
        #expect(refund([.succeeded, .succeeded]).status == .succeeded)
        #expect(refund([.succeeded, .pending]).status == .pending)
        #expect(refund([.pending, .failed]).status == .failed)
        #expect(refund([.failed, .succeeded]).status == .failed)
    }

    @Test func refundAndRequestIDs() {
        #expect(RefundID.make(order: "ord_1", number: 3) == "rf_3_ord_1")
        #expect(RefundID.parse("rf_3_ord_1")! == (order: "ord_1", number: 3))
        #expect(RefundID.parse("rf_12_a_b")! == (order: "a_b", number: 12))
        #expect(RefundID.parse("rf_0_ord") == nil)
        #expect(RefundID.parse("rf_x_ord") == nil)
        #expect(RefundID.parse("rf_3_") == nil)
        #expect(RefundID.parse("rq_3_ord") == nil)
        #expect(RequestID.parse(RequestID.make(order: "o:1", number: 7))! == (order: "o:1", number: 7))
    }
}
