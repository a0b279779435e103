/// A decided refund, before it gets an id: what each line returns, the fee kept, the tax, and the money
/// movements. Built by ``RefundPlanner``.
public struct RefundPlan: Sendable, Equatable {
    public var lineIndices: [Int]
    public var lines: [RefundLine]
    public var bookingFee: Int64
    public var amount: Int64
    public var feeRetained: Int64
    public var tax: Int64
    /// Money movements; tender-less for the balance method. Zero shares are left out.
    public var transactions: [RefundTransaction]
    /// Lines left out of an implicit (whole-order) selection, and why.
    public var skipped: [BlockedItem]
}

/// Decides refunds: selection, eligibility, amounts, fees, tax, booking fee and the tender split. Pure.
public enum RefundPlanner {
    /// Decides a refund of `state` with `options`, or throws a coded error (eligibility failures carry the
    /// reason code of the first block and list every block). Never changes anything.
    public static func plan(_ state: OrderState, _ options: RefundOptions, context: RefundContext) throws(RefundError)
        -> RefundPlan
    {
        try checkPermissions(options, context.caller)
        try validateOptions(options)
        try checkSelfServiceCaller(state, options, context.caller)
        let selection = try select(state, options, context: context)
        guard selection.blocked.isEmpty else {
            let first = selection.blocked[0]
            let subject = first.line.map { "line \($0)" } ?? "order \(state.order.id)"
            var explanation = first.reason.explanation
            if first.reason == .selfServiceClosed,
                let rule = Eligibility.selfServiceRule(state, method: options.method, line: first.line, context: context)
            {
                explanation += ": \(rule)"  // which self-service rule, not only that one failed
            }
            throw RefundError(first.reason.code, "\(subject) cannot be refunded: \(explanation)", blocked: selection.blocked)
        }
        guard !selection.indices.isEmpty else {
            throw RefundError(
                .nothingToRefund, "order \(state.order.id) has no active line to refund", blocked: selection.skipped)
        }
        var plan = try amounts(state, options, indices: selection.indices, now: context.now)
        plan.skipped = selection.skipped
        return plan
    }

    /// What would refund now with `options`, what is blocked and why, and the methods available: the answer of
    /// `refund.preview`. Fails only on malformed options (unknown lines, bad fees, missing permissions).
    public static func preview(_ state: OrderState, _ options: RefundOptions, context: RefundContext) throws(RefundError)
        -> RefundPreview
    {
        try checkPermissions(options, context.caller)
        try validateOptions(options)
        let selection = try select(state, options, context: context)
        var methods: [RefundMethod] = []
        for method in RefundMethod.allCases {
            var probe = options
            probe.method = method
            probe.fee = nil
            if (try? plan(state, probe, context: context)) != nil { methods.append(method) }
        }
        let blocked = selection.blocked + selection.skipped
        guard selection.blocked.isEmpty, !selection.indices.isEmpty else {
            return RefundPreview(
                orderID: state.order.id, refundable: false, amount: 0, feeRetained: 0, tax: 0, bookingFee: 0, lines: [],
                tenders: [], blocked: blocked, methodsAvailable: methods)
        }
        let plan = try amounts(state, options, indices: selection.indices, now: context.now)
        return RefundPreview(
            orderID: state.order.id, refundable: true, amount: plan.amount, feeRetained: plan.feeRetained, tax: plan.tax,
            bookingFee: plan.bookingFee, lines: plan.lines,
            tenders: plan.transactions.map { RefundPreview.TenderShare(tender: $0.tender, method: $0.method, amount: $0.amount) },
            blocked: blocked, methodsAvailable: methods)
    }

    // MARK: Steps

    public static func checkPermissions(_ options: RefundOptions, _ caller: Caller) throws(RefundError) {
        if options.selfService {
            try caller.require(.selfService, for: "a self-service refund")
        } else if options.method == .none {
            try caller.require(.cancel, for: "a cancellation (method none)")
        } else {
            try caller.require(.refund, for: "a refund")
        }
        if options.fee != nil { try caller.require(.applyCancellationFee, for: "a cancellation fee") }
        if options.policy == .full { try caller.require(.overrideFees, for: "policy full") }
    }

    /// A self-service refund is the order's own customer acting: the caller's id must be the order's customer.
    static func checkSelfServiceCaller(_ state: OrderState, _ options: RefundOptions, _ caller: Caller) throws(RefundError) {
        // Box-office orders have no customer: eligibility closes self-service for them (self_service_closed).
        guard options.selfService, let customer = state.order.customer, caller.id != customer else { return }
        throw RefundError(
            .permissionDenied, "a self-service refund must come from the order's customer; \(caller.id) is not order \(state.order.id)'s customer")
    }

    /// `refund.request` follows the self-service caller rule: a buyer (`self_service`) files only on their own
    /// order, so the caller's id must be the order's customer (a box-office order has none: no buyer can file on
    /// it). Staff (the `refund` permission) may file on a buyer's behalf.
    public static func checkRequestCaller(_ order: Order, _ caller: Caller) throws(RefundError) {
        if caller.permissions.contains(.refund) { return }
        guard caller.permissions.contains(.selfService) else {
            throw RefundError(
                .permissionDenied,
                "a refund request needs the 'self_service' permission (the order's customer) or the 'refund' permission (staff on the buyer's behalf); \(caller.id) has neither")
        }
        guard let customer = order.customer, caller.id == customer else {
            throw RefundError(
                .permissionDenied,
                "a self-service refund request must come from the order's customer; \(caller.id) is not order \(order.id)'s customer")
        }
    }

    public static func validateOptions(_ options: RefundOptions) throws(RefundError) {
        guard isReasonCode(options.reason) else {
            throw RefundError(.invalidField, "reason must be a code of 1–64 characters of [a-z0-9_], got '\(options.reason.prefix(40))'")
        }
        if let note = options.note, note.utf8.count > 4096 {
            throw RefundError(.invalidField, "note must be at most 4096 bytes")
        }
        if let text = options.emailText, text.utf8.count > RefundOptions.maxEmailTextBytes {
            throw RefundError(.invalidField, "email_text must be at most \(RefundOptions.maxEmailTextBytes) bytes")
        }
        if let key = options.idempotencyKey, key.isEmpty || key.utf8.count > 255 {
            throw RefundError(.invalidField, "idempotency_key must be 1–255 characters")
        }
        if let lines = options.lines {
            guard !lines.isEmpty else { throw RefundError(.invalidField, "lines must name at least one line when given") }
        }
        if options.method == .none, options.fee != nil {
            throw RefundError(.invalidField, "fee makes no sense with method none: no money is returned")
        }
        switch options.fee {
        case .each(let fee)?, .order(let fee)?:
            guard fee >= 0 else { throw RefundError(.invalidAmount, "fee must not be negative, got \(fee)") }
        case .perLine(let fees)?:
            for (line, fee) in fees where fee < 0 {
                throw RefundError(.invalidAmount, "fee.per_line.\(line) must not be negative, got \(fee)")
            }
        case nil: break
        }
    }

    static func isReasonCode(_ text: String) -> Bool {
        let utf8 = text.utf8
        return !utf8.isEmpty && utf8.count <= 64
            && utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    struct Selection {
        var indices: [Int] = []
        var blocked: [BlockedItem] = []
        var skipped: [BlockedItem] = []
    }

    static func select(_ state: OrderState, _ options: RefundOptions, context: RefundContext) throws(RefundError)
        -> Selection
    {
        let order = state.order
        var selection = Selection()
        if options.lines == nil, state.activeLineCount == 0 {
            throw RefundError(.nothingToRefund, "order \(order.id) has no active line left to refund or cancel")
        }
        for reason in Eligibility.orderReasons(
            state, method: options.method, selfService: options.selfService, context: context)
        {
            selection.blocked.append(BlockedItem(line: nil, reason: reason))
        }
        var balanceLeft = context.customerBalance
        if let ids = options.lines {
            var seen = Set<String>()
            for id in ids {
                guard let index = order.lineIndex(id) else {
                    throw RefundError(.lineNotFound, "lines: order \(order.id) has no line '\(id.prefix(128))'")
                }
                guard seen.insert(id).inserted else { throw RefundError(.duplicateID, "lines: line '\(id)' is named twice") }
                let reasons = Eligibility.lineReasons(
                    state, index: index, method: options.method, selfService: options.selfService, balanceLeft: &balanceLeft)
                if reasons.isEmpty {
                    selection.indices.append(index)
                } else {
                    selection.blocked += reasons.map { BlockedItem(line: id, reason: $0) }
                }
            }
        } else {
            for index in order.lines.indices {
                guard state.lineStatus[index] == .active else {
                    selection.skipped.append(BlockedItem(line: order.lines[index].id, reason: .alreadyRefunded))
                    continue
                }
                let reasons = Eligibility.lineReasons(
                    state, index: index, method: options.method, selfService: options.selfService, balanceLeft: &balanceLeft)
                if reasons.isEmpty {
                    selection.indices.append(index)
                } else {
                    selection.skipped += reasons.map { BlockedItem(line: order.lines[index].id, reason: $0) }
                }
            }
        }
        if options.selfService, selection.blocked.isEmpty,
            order.lines.contains(where: { $0.discount > 0 }), selection.indices.count != state.activeLineCount
        {
            // Discounted orders: self-service refunds every remaining line together, never a subset.
            selection.blocked.append(BlockedItem(line: nil, reason: .selfServiceClosed))
        }
        return selection
    }

    /// Amounts, fees, tax, booking fee and transactions for an eligible selection.
    static func amounts(_ state: OrderState, _ options: RefundOptions, indices: [Int], now: Timestamp) throws(RefundError)
        -> RefundPlan
    {
        let order = state.order
        let full = options.policy == .full
        let money = options.method != .none
        var refundable = [Int64](repeating: 0, count: indices.count)
        var refundableTotal: Int64 = 0
        for (k, index) in indices.enumerated() {
            let line = order.lines[index]
            var value = line.paidValue
            if full || options.includeProcessingFees { value = try CheckedMoney.add(value, line.processingFee, "line refundable") }
            if full || options.includePlatformFees { value = try CheckedMoney.add(value, line.platformFee, "line refundable") }
            refundable[k] = money ? value : 0
            refundableTotal = try CheckedMoney.add(refundableTotal, refundable[k], "the refundable total")
        }
        let fees = try cancellationFees(options.fee, order: order, indices: indices, refundable: refundable, total: refundableTotal)

        var lines: [RefundLine] = []
        lines.reserveCapacity(indices.count)
        var amount: Int64 = 0
        var feeRetained: Int64 = 0
        var taxTotal: Int64 = 0
        for (k, index) in indices.enumerated() {
            let line = order.lines[index]
            let refunded = refundable[k] - fees[k]
            var tax: Int64 = 0
            if money, line.tax > 0, refundable[k] > 0 {
                // The line's tax split over (refunded, retained) by the allocation rule; the first share is refunded.
                tax = Allocation.splitTwo(line.tax, refunded, fees[k]).0
            }
            lines.append(RefundLine(line: line.id, amount: refunded, feeRetained: fees[k], tax: tax))
            amount += refunded
            feeRetained += fees[k]
            taxTotal += tax
        }

        var bookingFee: Int64 = 0
        if money, full || options.includeBookingFee, !state.bookingFeeRefunded, order.bookingFee > 0,
            indices.count == state.activeLineCount
        {
            bookingFee = order.bookingFee
            amount = try CheckedMoney.add(amount, bookingFee, "the refund amount")
        }

        let transactions = try split(state, method: options.method, amount: amount, now: now)
        return RefundPlan(
            lineIndices: indices, lines: lines, bookingFee: bookingFee, amount: amount, feeRetained: feeRetained,
            tax: taxTotal, transactions: transactions, skipped: [])
    }

    static func cancellationFees(
        _ fee: CancellationFee?, order: Order, indices: [Int], refundable: [Int64], total: Int64
    ) throws(RefundError) -> [Int64] {
        var fees = [Int64](repeating: 0, count: indices.count)
        switch fee {
        case nil:
            break
        case .each(let each):
            for k in indices.indices {
                guard each <= refundable[k] else {
                    throw RefundError(
                        .feeExceedsRefundable,
                        "fee.each \(each) exceeds the refundable \(refundable[k]) of line \(order.lines[indices[k]].id)")
                }
                fees[k] = each
            }
        case .perLine(let perLine):
            for (id, _) in perLine where !indices.contains(where: { order.lines[$0].id == id }) {
                throw RefundError(.lineNotFound, "fee.per_line names line '\(id.prefix(128))', which this refund does not include")
            }
            for (k, index) in indices.enumerated() {
                let lineFee = perLine[order.lines[index].id] ?? 0
                guard lineFee <= refundable[k] else {
                    throw RefundError(
                        .feeExceedsRefundable,
                        "fee.per_line.\(order.lines[index].id) \(lineFee) exceeds the line's refundable \(refundable[k])")
                }
                fees[k] = lineFee
            }
        case .order(let orderFee):
            let capped = min(orderFee, total)
            if total > 0 { fees = Allocation.splitUnchecked(capped, by: refundable, total: total) }
        }
        return fees
    }

    /// Splits the refund total over the order's tenders by their remaining amounts (methods original and
    /// offline), or makes one balance transaction.
    static func split(_ state: OrderState, method: RefundMethod, amount: Int64, now: Timestamp) throws(RefundError)
        -> [RefundTransaction]
    {
        let order = state.order
        switch method {
        case .none:
            return []
        case .balance:
            guard order.customer != nil else {
                throw RefundError(.methodNotAvailable, "method balance needs a customer; order \(order.id) is a box-office order")
            }
            guard amount > 0 else {
                throw RefundError(.methodNotAvailable, "method balance is not available for a zero-value refund")
            }
            try checkRemaining(state, amount)
            return [RefundTransaction(tender: nil, method: .balance, amount: amount, status: .succeeded, attempts: 1, settledAt: now)]
        case .original, .offline:
            guard amount > 0 else { return [] }
            let total = try checkRemaining(state, amount)
            let shares =
                order.tenders.count == 1 ? [amount] : Allocation.splitUnchecked(amount, by: state.tenderRemaining, total: total)
            var transactions: [RefundTransaction] = []
            transactions.reserveCapacity(shares.count)
            for (i, share) in shares.enumerated() where share > 0 {
                let tender = order.tenders[i]
                if method == .original, tender.method == .card {
                    transactions.append(
                        RefundTransaction(
                            tender: tender.id, method: .card, amount: share, status: .pending, attempts: 0, nextAttemptAt: now))
                } else {
                    transactions.append(
                        RefundTransaction(
                            tender: tender.id, method: TransactionMethod(tender.method), amount: share, status: .succeeded,
                            attempts: 1, settledAt: now))
                }
            }
            return transactions
        }
    }

    @discardableResult
    static func checkRemaining(_ state: borrowing OrderState, _ amount: Int64) throws(RefundError) -> Int64 {
        // Σ remaining ≤ Σ tenders, which validation proved fits in an Int64.
        let total = state.totalRemaining
        guard amount <= total else {
            throw RefundError(
                .invalidState, "refund of \(amount) exceeds the \(total) still refundable on order \(state.order.id)'s tenders")
        }
        return total
    }
}

/// The answer of `refund.preview`.
public struct RefundPreview: Sendable, Equatable, Codable {
    public struct TenderShare: Sendable, Equatable, Codable {
        public var tender: String?
        public var method: TransactionMethod
        public var amount: Int64
    }

    public var orderID: String
    /// Whether a refund with these options would be accepted now.
    public var refundable: Bool
    public var amount: Int64
    public var feeRetained: Int64
    public var tax: Int64
    public var bookingFee: Int64
    public var lines: [RefundLine]
    public var tenders: [TenderShare]
    /// What is blocked (line nil: the whole order) and why.
    public var blocked: [BlockedItem]
    public var methodsAvailable: [RefundMethod]

    enum CodingKeys: String, CodingKey {
        case refundable, amount, tax, lines, tenders, blocked
        case orderID = "order_id", feeRetained = "fee_retained", bookingFee = "booking_fee"
        case methodsAvailable = "methods_available"
    }
}
