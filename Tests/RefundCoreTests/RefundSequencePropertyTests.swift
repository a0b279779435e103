import PropertyBased
import Testing

@testable import RefundCore

/// Random orders refunded in random partial steps: the money always adds up, no tender is ever refunded beyond
/// what it captured, and a full-policy sequence returns every tender exactly.
@Suite struct RefundSequencePropertyTests {
    /// A random valid order: 1–6 lines with random prices, discounts, fees and tax, an optional booking fee, and
    /// 1–3 tenders that sum exactly to what the buyer paid.
    static func randomOrder(using rng: inout SplitMix64) -> Order {
        let boxOffice = Int.random(in: 0..<5, using: &rng) == 0
        var lines: [OrderLine] = []
        for i in 0..<Int.random(in: 1...6, using: &rng) {
            let price: Int64 = Int.random(in: 0..<8, using: &rng) == 0 ? 0 : Int64.random(in: 1...20_000, using: &rng)
            let discount: Int64 = Bool.random(using: &rng) ? 0 : Int64.random(in: 0...price, using: &rng)
            let paid = price - discount
            let tax: Int64 = Bool.random(using: &rng) ? 0 : Int64.random(in: 0...paid, using: &rng)
            let kind: LineKind = [.ticket, .ticket, .ticket, .product, .fee].randomElement(using: &rng)!
            lines.append(
                OrderLine(
                    id: "l\(i + 1)", kind: kind, ticketType: kind == .ticket ? "tt_\(i % 2)" : nil, price: price,
                    discount: discount, tax: tax,
                    processingFee: Bool.random(using: &rng) ? 0 : Int64.random(in: 0...300, using: &rng),
                    platformFee: Bool.random(using: &rng) ? 0 : Int64.random(in: 0...200, using: &rng)))
        }
        let bookingFee: Int64 = Bool.random(using: &rng) ? 0 : Int64.random(in: 1...500, using: &rng)
        let total = lines.reduce(bookingFee) { $0 + Fixtures.value($1) }
        // Cut [0, total] at random points: tenders that sum exactly to the total (some may be zero).
        let count = Int.random(in: 1...3, using: &rng)
        let cuts = ((0..<(count - 1)).map { _ in Int64.random(in: 0...total, using: &rng) }).sorted()
        let bounds = [0] + cuts + [total]
        var methods: [TenderMethod] = [.card, .giftCard, .cash, .bankTransfer, .other]
        if !boxOffice { methods += [.wallet, .wallet] }
        let tenders = (0..<count).map { i in
            let method = methods.randomElement(using: &rng)!
            return Tender(
                id: "t\(i + 1)", method: method, amount: bounds[i + 1] - bounds[i],
                gatewayRef: method == .card ? "pi_\(i + 1)" : nil)
        }
        return Order(
            id: "ord_p", event: "evt_1", eventStartsAt: Fixtures.eventStart, customer: boxOffice ? nil : "cus_1",
            currency: .gbp, bookingFee: bookingFee, lines: lines, tenders: tenders)
    }

    /// A random non-empty subset of the active lines, or nil (the whole order) a quarter of the time.
    static func randomSelection(_ state: OrderState, using rng: inout SplitMix64) -> [String]? {
        if Int.random(in: 0..<4, using: &rng) == 0 { return nil }
        let active = state.order.lines.indices.filter { state.lineStatus[$0] == .active }
        var picked = active.filter { _ in Bool.random(using: &rng) }
        if picked.isEmpty { picked = [active.randomElement(using: &rng)!] }
        return picked.shuffled(using: &rng).map { state.order.lines[$0].id }
    }

    static func plan(_ state: OrderState, _ options: RefundOptions, _ context: RefundContext) -> Result<RefundPlan, RefundError> {
        do {
            return .success(try RefundPlanner.plan(state, options, context: context))
        } catch {
            return .failure(error)
        }
    }

    /// Checks the invariants that hold after every change.
    static func checkStep(_ state: OrderState, sourceLocation: SourceLocation = #_sourceLocation) {
        expectTotalsIdentity(state, sourceLocation: sourceLocation)
        expectTendersWithinCaptured(state, sourceLocation: sourceLocation)
    }

    @Test func fullPolicySequencesRefundEveryTenderExactly() async {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let order = Self.randomOrder(using: &rng)
            #expect(refundError { try OrderValidation.validate(order) } == nil, "seed \(seed): \(order)")
            var state = Fixtures.place(order)
            let context = Fixtures.context()
            Self.checkStep(state)
            var steps = 0
            while state.activeLineCount > 0 {
                steps += 1
                guard steps <= 12 else {
                    Issue.record("seed \(seed): no progress")
                    return
                }
                let lines = Self.randomSelection(state, using: &rng)
                var methods: [RefundMethod] = [.original, .offline]
                if order.customer != nil { methods.append(.balance) }
                var options = Fixtures.options(
                    lines: lines, method: methods.randomElement(using: &rng)!, includeBookingFee: true, policy: .full)
                var result = Self.plan(state, options, context)
                if case .failure(let error) = result, error.code == .methodNotAvailable, options.method == .balance {
                    // Balance is not for zero-value refunds: fall back to the original tenders.
                    options.method = .original
                    result = Self.plan(state, options, context)
                } else if case .failure(let error) = result, error.code == EligibilityReason.noPaymentToRefund.code {
                    // Only zero-value lines are left and every tender is used up: cancel them.
                    #expect(state.totalRemaining == 0, "seed \(seed)")
                    options = Fixtures.options(method: .none)
                    result = Self.plan(state, options, context)
                }
                let plan: RefundPlan
                switch result {
                case .success(let decided): plan = decided
                case .failure(let error):
                    Issue.record("seed \(seed): \(error) for \(options)")
                    return
                }

                // The plan returns exactly what was paid for the selected lines (+ the booking fee with the last).
                let values = plan.lineIndices.map { options.method == .none ? 0 : Fixtures.value(order.lines[$0]) }
                let isLast = plan.lineIndices.count == state.activeLineCount
                let booking = options.method != .none && isLast ? order.bookingFee : 0
                #expect(plan.amount == values.reduce(0, +) + booking, "seed \(seed)")
                #expect(plan.bookingFee == booking, "seed \(seed)")
                #expect(plan.feeRetained == 0)
                #expect(plan.transactions.map(\.amount).reduce(0, +) == plan.amount, "seed \(seed)")
                #expect(plan.transactions.allSatisfy { $0.amount > 0 })
                if options.method == .original || options.method == .offline {
                    let remaining = state.tenderRemaining
                    for transaction in plan.transactions {
                        let i = order.tenders.firstIndex { $0.id == transaction.tender }!
                        #expect(transaction.amount <= remaining[i], "seed \(seed)")
                    }
                }

                let refund = Fixtures.refund(state, plan, options, context)
                state.apply(.refundCreated(refund, options: nil))
                Self.checkStep(state)
                // Now and then the gateway fails for good; the refund waits in the attention queue while the
                // order goes on, and is retried at the end.
                let outcome: AttemptResult =
                    Int.random(in: 0..<4, using: &rng) == 0
                    ? .failed(code: "declined", retryable: false, retryAt: nil) : .succeeded(reference: "re_\(steps)")
                state.resolvePending(refund: state.refunds.count, outcome)
                Self.checkStep(state)
                #expect(state.totals.retained == 0, "seed \(seed): full policy keeps nothing")
                #expect(!state.hasPendingTransaction)
            }
            for number in state.refunds.indices.map({ $0 + 1 }) where state.refunds[number - 1].needsAttention {
                state.apply(.retried(refund: number, at: Fixtures.now, by: "staff_1"))
                Self.checkStep(state)
                state.resolvePending(refund: number, .succeeded(reference: nil))
                Self.checkStep(state)
            }
            #expect(state.tenderRefunded == order.tenders.map(\.amount), "seed \(seed): \(order)")
            #expect(state.totalRemaining == 0)
            let totals = state.totals
            #expect(totals.refunded == totals.gross && totals.net == 0 && totals.outstanding == 0, "seed \(seed)")
            #expect(state.status == .refunded || state.status == .cancelled)
            #expect(state.isFullyRefunded)
        }
    }

    /// Random policies, fees, inclusion flags and methods (including cancellations), with gateway failures that
    /// are retried at once or written off: the totals identity and the per-tender cap hold at every step.
    @Test func anySequenceKeepsTheTotalsIdentityAndTheTenderCap() async {
        await propertyCheck(count: 250, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let order = Self.randomOrder(using: &rng)
            var state = Fixtures.place(order)
            let context = Fixtures.context()
            var steps = 0
            while state.activeLineCount > 0, steps < 8 {
                steps += 1
                let lines = Self.randomSelection(state, using: &rng)
                var methods: [RefundMethod] = [.original, .offline, .none]
                if order.customer != nil { methods.append(.balance) }
                let method = methods.randomElement(using: &rng)!
                var fee: CancellationFee?
                if method != .none {
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: fee = .order(Int64.random(in: 0...3000, using: &rng))
                    case 1: fee = .each(Int64.random(in: 0...100, using: &rng))
                    default: fee = nil
                    }
                }
                let options = Fixtures.options(
                    lines: lines, method: method, fee: fee, includeProcessingFees: Bool.random(using: &rng),
                    includePlatformFees: Bool.random(using: &rng), includeBookingFee: Bool.random(using: &rng),
                    policy: Bool.random(using: &rng) ? .full : .standard)
                let plan: RefundPlan
                switch Self.plan(state, options, context) {
                case .success(let decided): plan = decided
                case .failure(let error):
                    // Refusals are fine (fees above a line, zero-value balance, nothing left to pay back): they
                    // must be coded errors and change nothing.
                    let allowed: Set<RefundError.Code> = [
                        .feeExceedsRefundable, .methodNotAvailable, EligibilityReason.noPaymentToRefund.code,
                    ]
                    #expect(allowed.contains(error.code), "seed \(seed): \(error)")
                    continue
                }
                #expect(plan.amount + plan.feeRetained <= state.totalRemaining + plan.feeRetained)
                #expect(plan.lines.allSatisfy { $0.amount >= 0 && $0.feeRetained >= 0 && $0.tax >= 0 })
                for (k, index) in plan.lineIndices.enumerated() {
                    #expect(plan.lines[k].tax <= order.lines[index].tax)
                }
                let refund = Fixtures.refund(state, plan, options, context)
                state.apply(.refundCreated(refund, options: nil))
                Self.checkStep(state)
                let number = state.refunds.count
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:
                    state.resolvePending(refund: number, .failed(code: "declined", retryable: false, retryAt: nil))
                    Self.checkStep(state)
                    state.apply(.retried(refund: number, at: Fixtures.now, by: "staff_1"))
                    Self.checkStep(state)
                    state.resolvePending(refund: number, .succeeded(reference: nil))
                case 1:
                    state.resolvePending(refund: number, .failed(code: "declined", retryable: false, retryAt: nil))
                    if state.refunds[number - 1].needsAttention {
                        Self.checkStep(state)
                        let recovery = Recovery(action: .writtenOff, note: "n", by: "staff_1", at: Fixtures.now)
                        state.apply(.recovered(refund: number, recovery))
                    }
                default:
                    state.resolvePending(refund: number, .succeeded(reference: nil))
                }
                Self.checkStep(state)
            }
        }
    }
}
