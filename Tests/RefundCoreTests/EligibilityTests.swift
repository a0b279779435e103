import Testing

@testable import RefundCore

/// Every eligibility reason code of contract section 5, through `RefundPlanner.plan`.
@Suite struct EligibilityTests {
    /// Plans `options` and expects the eligibility error `reason`: its code, a non-empty `blocked` holding the
    /// reason, and a message naming the subject and the rule.
    @discardableResult
    private func expectBlocked(
        _ state: OrderState, _ options: RefundOptions, _ reason: EligibilityReason, line: String? = nil,
        context: RefundContext = Fixtures.context(), sourceLocation: SourceLocation = #_sourceLocation
    ) -> RefundError? {
        let error = refundError(sourceLocation: sourceLocation) { _ = try RefundPlanner.plan(state, options, context: context) }
        guard let error else {
            Issue.record("expected \(reason.rawValue), the refund was allowed", sourceLocation: sourceLocation)
            return nil
        }
        #expect(error.code == reason.code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.code.rawValue == reason.rawValue, sourceLocation: sourceLocation)
        #expect(!error.blocked.isEmpty, sourceLocation: sourceLocation)
        #expect(error.blocked.contains(BlockedItem(line: line, reason: reason)), "\(error.blocked)", sourceLocation: sourceLocation)
        #expect(error.message.contains(reason.explanation), "\(error.message)", sourceLocation: sourceLocation)
        #expect(error.message.contains(line.map { "line \($0)" } ?? "order \(state.order.id)"), sourceLocation: sourceLocation)
        return error
    }

    private func expectAllowed(
        _ state: OrderState, _ options: RefundOptions, context: RefundContext = Fixtures.context(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = refundError(sourceLocation: sourceLocation) { _ = try RefundPlanner.plan(state, options, context: context) }
        #expect(error == nil, "\(String(describing: error))", sourceLocation: sourceLocation)
    }

    let tickets = Fixtures.order(lines: Fixtures.tickets([1000, 2000]))

    @Test func everyReasonHasASnakeCaseCodeAndAnExplanation() {
        #expect(EligibilityReason.allCases.count == 13)
        for reason in EligibilityReason.allCases {
            #expect(reason.code.rawValue == reason.rawValue)
            #expect(!reason.explanation.isEmpty)
            #expect(reason.rawValue.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || $0 == 95 })
        }
    }

    @Test func alreadyRefunded() throws {
        var state = Fixtures.place(tickets)
        try state.refund(Fixtures.options(lines: ["l1"], method: .offline))
        expectBlocked(state, Fixtures.options(lines: ["l1"]), .alreadyRefunded, line: "l1")
        // A cancelled line too.
        try state.refund(Fixtures.options(lines: ["l2"], method: .none))
        expectBlocked(state, Fixtures.options(lines: ["l2"], method: .none), .alreadyRefunded, line: "l2")
    }

    @Test func orderFrozen() {
        let state = Fixtures.place(Fixtures.order(frozen: true, lines: Fixtures.tickets([1000])))
        expectBlocked(state, Fixtures.options(), .orderFrozen)
        expectBlocked(state, Fixtures.options(method: .none), .orderFrozen)
    }

    @Test func syncPending() {
        let state = Fixtures.place(Fixtures.order(syncPending: true, lines: Fixtures.tickets([1000])))
        expectBlocked(state, Fixtures.options(), .syncPending)
    }

    @Test func refundInProgress() throws {
        var state = Fixtures.place(tickets)
        try state.refund(Fixtures.options(lines: ["l1"]))
        #expect(state.hasPendingTransaction)
        expectBlocked(state, Fixtures.options(lines: ["l2"]), .refundInProgress)
        expectBlocked(state, Fixtures.options(lines: ["l2"], method: .none), .refundInProgress)
        // Once the gateway answers the order is free again.
        state.resolvePending(refund: 1, .succeeded(reference: "re_1"))
        expectAllowed(state, Fixtures.options(lines: ["l2"]))
    }

    @Test func giftVoucherClaimed() {
        var lines = Fixtures.tickets([1000, 2500])
        lines[1].kind = .giftVoucher
        lines[1].claimed = true
        let state = Fixtures.place(Fixtures.order(lines: lines))
        expectBlocked(state, Fixtures.options(lines: ["l2"]), .giftVoucherClaimed, line: "l2")
        // Even a cancellation cannot take back a claimed voucher.
        expectBlocked(state, Fixtures.options(lines: ["l2"], method: .none), .giftVoucherClaimed, line: "l2")
        // An unclaimed voucher refunds.
        lines[1].claimed = false
        expectAllowed(Fixtures.place(Fixtures.order(lines: lines)), Fixtures.options(lines: ["l2"]))
    }

    @Test func depositNotRefundable() {
        var lines = Fixtures.tickets([1000, 5000])
        lines[1].kind = .deposit
        let state = Fixtures.place(Fixtures.order(lines: lines))
        expectBlocked(state, Fixtures.options(lines: ["l2"]), .depositNotRefundable, line: "l2")
        expectBlocked(state, Fixtures.options(lines: ["l2"], method: .balance), .depositNotRefundable, line: "l2")
        // A cancellation without money is allowed.
        expectAllowed(state, Fixtures.options(lines: ["l2"], method: .none))
    }

    @Test func transferredAfterCheckout() {
        var lines = Fixtures.tickets([1000, 2000])
        lines[0].transferred = true
        let state = Fixtures.place(Fixtures.order(lines: lines))
        expectBlocked(state, Fixtures.options(lines: ["l1"]), .transferredAfterCheckout, line: "l1")
        expectAllowed(state, Fixtures.options(lines: ["l1"], method: .none))
    }

    @Test(arguments: [OrderSource.free, .comp])
    func noPaymentToRefund(source: OrderSource) {
        let state = Fixtures.place(Fixtures.order(source: source, lines: Fixtures.tickets([0]), tenders: []))
        expectBlocked(state, Fixtures.options(), .noPaymentToRefund)
        expectBlocked(state, Fixtures.options(method: .offline), .noPaymentToRefund)
        expectAllowed(state, Fixtures.options(method: .none))
    }

    @Test func noPaymentToRefundOnAPaidOrderOfZeroValue() {
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([0])))
        expectBlocked(state, Fixtures.options(), .noPaymentToRefund)
    }

    @Test func noPaymentToRefundOnceTheTendersAreUsedUp() throws {
        // A £0 line left after everything paid was refunded.
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 0])))
        try state.refund(Fixtures.options(lines: ["l1"], method: .offline))
        expectBlocked(state, Fixtures.options(lines: ["l2"]), .noPaymentToRefund)
    }

    @Test func disputed() throws {
        var state = Fixtures.place(tickets)
        state.apply(.disputeOpened(reason: "fraudulent", at: Fixtures.now, by: "gateway"))
        #expect(state.openDispute != nil)
        expectBlocked(state, Fixtures.options(), .disputed)
        state.apply(.disputeClosed(outcome: .won, note: nil, at: Fixtures.now, by: "staff_1"))
        #expect(state.openDispute == nil)
        expectAllowed(state, Fixtures.options())
    }

    @Test func childOrdersActive() {
        let state = Fixtures.place(tickets)
        expectBlocked(state, Fixtures.options(), .childOrdersActive, context: Fixtures.context(childrenActive: true))
        expectAllowed(state, Fixtures.options(), context: Fixtures.context(childrenActive: false))
    }

    // MARK: Self-service

    let customer = Fixtures.context(caller: .customer("cus_9"))

    @Test func selfServiceAllowedForTicketsToTheBalanceBeforeTheCutoff() {
        let state = Fixtures.place(tickets)
        expectAllowed(state, Fixtures.options(method: .balance, selfService: true), context: customer)
        expectAllowed(state, Fixtures.options(lines: ["l1"], method: .balance, selfService: true), context: customer)
    }

    @Test(arguments: [RefundMethod.original, .offline, .none])
    func selfServiceClosedForMethodsOtherThanBalance(method: RefundMethod) {
        let state = Fixtures.place(tickets)
        var caller = Caller.customer("cus_9")
        caller.permissions.insert(.cancel)
        expectBlocked(
            state, Fixtures.options(method: method, selfService: true), .selfServiceClosed,
            context: Fixtures.context(caller: caller))
    }

    @Test func selfServiceClosedForBoxOfficeOrders() {
        let state = Fixtures.place(Fixtures.order(customer: nil, lines: Fixtures.tickets([1000]), tenders: [.cash]))
        expectBlocked(state, Fixtures.options(method: .balance, selfService: true), .selfServiceClosed, context: customer)
    }

    @Test func selfServiceClosedAtTheCutoff() {
        let state = Fixtures.place(tickets)
        let hour: Int64 = 3_600_000
        let justBefore = Fixtures.eventStart.adding(milliseconds: -24 * hour - 1)
        let atCutoff = Fixtures.eventStart.adding(milliseconds: -24 * hour)
        let options = Fixtures.options(method: .balance, selfService: true)
        let caller = Caller.customer("cus_9")
        expectAllowed(state, options, context: Fixtures.context(now: justBefore, caller: caller))
        expectBlocked(state, options, .selfServiceClosed, context: Fixtures.context(now: atCutoff, caller: caller))
        expectBlocked(state, options, .selfServiceClosed, context: Fixtures.context(now: Fixtures.eventStart, caller: caller))
        // The cutoff is configurable.
        expectAllowed(state, options, context: Fixtures.context(now: atCutoff, caller: caller, cutoffHours: 2))
        expectBlocked(
            state, options, .selfServiceClosed,
            context: Fixtures.context(now: Fixtures.eventStart.adding(milliseconds: -hour), caller: caller, cutoffHours: 2))
    }

    @Test func selfServiceClosedWithoutAnEventStart() {
        let state = Fixtures.place(Fixtures.order(eventStartsAt: nil, lines: Fixtures.tickets([1000])))
        expectBlocked(state, Fixtures.options(method: .balance, selfService: true), .selfServiceClosed, context: customer)
    }

    @Test func selfServiceClosedForNonTicketLines() {
        var lines = Fixtures.tickets([1000, 700])
        lines[1].kind = .product
        let state = Fixtures.place(Fixtures.order(lines: lines))
        expectBlocked(
            state, Fixtures.options(lines: ["l2"], method: .balance, selfService: true), .selfServiceClosed, line: "l2",
            context: customer)
        expectAllowed(state, Fixtures.options(lines: ["l1"], method: .balance, selfService: true), context: customer)
    }

    @Test func selfServiceOnADiscountedOrderRefundsEveryLineTogether() {
        var lines = Fixtures.tickets([1000, 1000, 1000])
        lines[0].discount = 100
        let state = Fixtures.place(Fixtures.order(lines: lines))
        expectBlocked(
            state, Fixtures.options(lines: ["l1", "l2"], method: .balance, selfService: true), .selfServiceClosed,
            context: customer)
        expectAllowed(state, Fixtures.options(lines: ["l1", "l2", "l3"], method: .balance, selfService: true), context: customer)
        expectAllowed(state, Fixtures.options(method: .balance, selfService: true), context: customer)
    }

    // MARK: Wallet top-ups

    @Test func walletBalanceSpent() {
        var lines = Fixtures.tickets([1000, 2000])
        lines[1].kind = .walletTopUp
        let state = Fixtures.place(Fixtures.order(lines: lines))
        expectBlocked(
            state, Fixtures.options(lines: ["l2"]), .walletBalanceSpent, line: "l2", context: Fixtures.context(balance: 1999))
        expectAllowed(state, Fixtures.options(lines: ["l2"]), context: Fixtures.context(balance: 2000))
        // A cancellation takes no money back but still takes the credit back: the balance must cover it too.
        expectBlocked(
            state, Fixtures.options(lines: ["l2"], method: .none), .walletBalanceSpent, line: "l2",
            context: Fixtures.context(balance: 1999))
        expectAllowed(state, Fixtures.options(lines: ["l2"], method: .none), context: Fixtures.context(balance: 2000))
    }

    @Test func walletBalanceCoversOnlyTheFirstTopUps() {
        var lines = Fixtures.tickets([1500, 1500])
        lines[0].kind = .walletTopUp
        lines[1].kind = .walletTopUp
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let error = expectBlocked(
            state, Fixtures.options(lines: ["l1", "l2"]), .walletBalanceSpent, line: "l2",
            context: Fixtures.context(balance: 2000))
        #expect(error?.blocked == [BlockedItem(line: "l2", reason: .walletBalanceSpent)])
        expectAllowed(state, Fixtures.options(lines: ["l2"]), context: Fixtures.context(balance: 2000))
    }

    // MARK: Several reasons

    @Test func everyBlockIsListedAndTheFirstNamesTheError() throws {
        var lines = Fixtures.tickets([1000, 2000])
        lines[1].kind = .deposit
        lines[1].transferred = true
        let state = Fixtures.place(Fixtures.order(frozen: true, lines: lines))
        let error = try #require(expectBlocked(state, Fixtures.options(lines: ["l1", "l2"]), .orderFrozen))
        #expect(
            error.blocked == [
                BlockedItem(line: nil, reason: .orderFrozen),
                BlockedItem(line: "l2", reason: .depositNotRefundable),
                BlockedItem(line: "l2", reason: .transferredAfterCheckout),
            ])
    }

    @Test func orderReasonsDirectly() {
        let state = Fixtures.place(Fixtures.order(frozen: true, syncPending: true, lines: Fixtures.tickets([1000])))
        let reasons = Eligibility.orderReasons(
            state, method: .original, selfService: false, context: Fixtures.context(childrenActive: true))
        #expect(reasons == [.orderFrozen, .syncPending, .childOrdersActive])
    }
}
