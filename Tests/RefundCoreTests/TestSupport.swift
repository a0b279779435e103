import Testing

@testable import RefundCore

/// Shared fixtures and helpers for the core tests: orders, contexts, and applying plans to a state.
enum Fixtures {
    /// 2026-11-22T10:00:00Z, the "now" of most tests (before the default event start).
    static let now = Timestamp(milliseconds: 1_795_341_600_000)
    /// 2026-12-01T19:00:00Z, the event start of the contract's example order.
    static let eventStart = Timestamp(milliseconds: 1_796_151_600_000)
    static let staff = Caller.staff("staff_1")

    static func context(
        now: Timestamp = now, caller: Caller = staff, childrenActive: Bool = false, balance: Int64 = 0,
        cutoffHours: Int64 = 24
    ) -> RefundContext {
        RefundContext(
            now: now, caller: caller, childrenActive: childrenActive, customerBalance: balance,
            selfServiceCutoffHours: cutoffHours)
    }

    /// The order of contract section 2: one discounted ticket, a booking fee, card 3000 + wallet 1884.
    static func contractOrder() -> Order {
        Order(
            id: "ord_1", event: "evt_1", eventStartsAt: eventStart, customer: "cus_9", email: "a@example.com",
            currency: .gbp, bookingFee: 150,
            lines: [
                OrderLine(
                    id: "l1", kind: .ticket, ticketType: "tt_ga", price: 5000, discount: 500, tax: 750,
                    processingFee: 135, platformFee: 99)
            ],
            tenders: [
                Tender(id: "t1", method: .card, amount: 3000, gatewayRef: "pi_1"),
                Tender(id: "t2", method: .wallet, amount: 1884),
            ])
    }

    /// What the buyer paid for a line: paid value + processing fee + platform fee.
    static func value(_ line: OrderLine) -> Int64 { line.paidValue + line.processingFee + line.platformFee }

    /// An order paid exactly by the given tender methods, the total split by `tenderWeights` (allocation rule).
    static func order(
        id: String = "ord_1", customer: String? = "cus_9", bookingFee: Int64 = 0, source: OrderSource = .paid,
        frozen: Bool = false, syncPending: Bool = false, eventStartsAt: Timestamp? = eventStart,
        lines: [OrderLine], tenders methods: [TenderMethod] = [.card], tenderWeights: [Int64]? = nil
    ) -> Order {
        let total = lines.reduce(bookingFee) { $0 + value($1) }
        let weights = tenderWeights ?? [Int64](repeating: 1, count: methods.count)
        let shares = (try? Allocation.split(total, by: weights)) ?? []
        let tenders = methods.enumerated().map { i, method in
            Tender(id: "t\(i + 1)", method: method, amount: shares[i], gatewayRef: method == .card ? "pi_\(i + 1)" : nil)
        }
        return Order(
            id: id, event: "evt_1", eventStartsAt: eventStartsAt, customer: customer, email: "a@example.com",
            currency: .gbp, source: source, frozen: frozen, syncPending: syncPending, bookingFee: bookingFee,
            lines: lines, tenders: tenders)
    }

    /// `n` plain tickets `l1…ln` with the given prices.
    static func tickets(_ prices: [Int64]) -> [OrderLine] {
        prices.enumerated().map { i, price in OrderLine(id: "l\(i + 1)", ticketType: "tt_ga", price: price) }
    }

    static func place(_ order: Order) -> OrderState { OrderState(placing: order, at: now, by: "checkout") }

    static func options(
        lines: [String]? = nil, method: RefundMethod = .original, fee: CancellationFee? = nil,
        includeProcessingFees: Bool = true, includePlatformFees: Bool = false, includeBookingFee: Bool = false,
        policy: RefundPolicy = .standard, selfService: Bool = false, restock: Bool = true
    ) -> RefundOptions {
        RefundOptions(
            lines: lines, method: method, fee: fee, includeProcessingFees: includeProcessingFees,
            includePlatformFees: includePlatformFees, includeBookingFee: includeBookingFee, policy: policy,
            reason: "customer_request", restock: restock, selfService: selfService)
    }

    /// The refund the engine would record for `plan` (mirrors the partition's `makeRefund`).
    static func refund(_ state: OrderState, _ plan: RefundPlan, _ options: RefundOptions, _ context: RefundContext)
        -> Refund
    {
        let number = state.refunds.count + 1
        return Refund(
            id: RefundID.make(order: state.order.id, number: number), orderID: state.order.id, method: options.method,
            amount: plan.amount, feeRetained: plan.feeRetained, tax: plan.tax, bookingFee: plan.bookingFee,
            reason: options.reason, note: options.note, createdAt: context.now, createdBy: context.caller.id,
            restock: options.restock, lines: plan.lines, transactions: plan.transactions)
    }
}

/// The `RefundError` that `body` throws, or nil when it returns (any other error is recorded as an issue).
func refundError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> RefundError? {
    do {
        try body()
        return nil
    } catch let error as RefundError {
        return error
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension OrderState {
    /// Plans a refund and applies it as `.refundCreated`; returns the refund number and the applied effects.
    @discardableResult
    mutating func refund(_ options: RefundOptions, context: RefundContext = Fixtures.context()) throws(RefundError)
        -> (number: Int, effects: ChangeEffects)
    {
        let plan = try RefundPlanner.plan(self, options, context: context)
        let refund = Fixtures.refund(self, plan, options, context)
        let effects = apply(.refundCreated(refund, options: options.idempotencyKey == nil ? nil : options))
        return (refunds.count, effects)
    }

    /// Marks every pending transaction of refund `number` with `result` (one attempt each).
    mutating func resolvePending(refund number: Int, _ result: AttemptResult, at: Timestamp = Fixtures.now) {
        let transactions = refunds[number - 1].transactions
        for (t, transaction) in transactions.enumerated() where transaction.status == .pending {
            apply(.attemptResult(refund: number, transaction: t, result: result, at: at))
        }
    }
}

/// `gross == refunded + outstanding + retained + net`, with every part non-negative.
func expectTotalsIdentity(_ state: OrderState, sourceLocation: SourceLocation = #_sourceLocation) {
    let t = state.totals
    #expect(t.gross == t.refunded + t.outstanding + t.retained + t.net, "\(t)", sourceLocation: sourceLocation)
    #expect(t.refunded >= 0 && t.outstanding >= 0 && t.retained >= 0 && t.net >= 0, "\(t)", sourceLocation: sourceLocation)
}

/// No tender is ever refunded below zero or beyond what it captured.
func expectTendersWithinCaptured(_ state: OrderState, sourceLocation: SourceLocation = #_sourceLocation) {
    for (i, tender) in state.order.tenders.enumerated() {
        #expect(
            state.tenderRefunded[i] >= 0 && state.tenderRefunded[i] <= tender.amount,
            "tender \(tender.id) refunded \(state.tenderRefunded[i]) of \(tender.amount)", sourceLocation: sourceLocation)
    }
}
