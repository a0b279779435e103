import RefundCore

/// What a partition decided for a moderation with an outcome per line.
enum ModerationResult: Sendable {
    /// Created (the cancellation without money first); `attempts` are the gateway requests to send now.
    case created([Refund], attempts: [PendingAttempt])
    /// A wallet top-up is among the lines: the engine must supply the customer's balance and ask again.
    case needsBalance(customer: String, currency: Currency)
}

extension Partition {
    /// `order.moderate` with `outcomes`: one refund per outcome, `invalidate_no_refund` lines (method none) then
    /// `invalidate_refund` lines (method original), each line in the order's line order. The cancellation without
    /// money comes first because it moves no money: the refund after it is planned against the order as the
    /// cancellation leaves it, whereas a refund first would leave a transaction pending that blocks anything
    /// after it (`refund_in_progress`). Both are committed as one log record: both or neither. Wallet top-up
    /// lines must share one outcome (each refund would otherwise check the same balance).
    func moderate(
        _ orderID: String, outcomes: [String: Engine.ModerationOutcome], note: String?, caller: Caller,
        childrenActive: Bool, balance: Int64?
    ) throws(RefundError) -> ModerationResult {
        try ensureRunning()
        guard !outcomes.isEmpty else { throw RefundError(.missingField, "outcomes must name at least one line") }
        let slot = try slot(orderID)
        let order = states[slot].order
        for line in outcomes.keys.sorted() where order.lineIndex(line) == nil {
            throw RefundError(.lineNotFound, "outcomes: order \(orderID) has no line '\(line.prefix(128))'")
        }
        let topUpOutcomes = Set(order.lines.filter { $0.kind == .walletTopUp }.compactMap { outcomes[$0.id] })
        guard topUpOutcomes.count <= 1 else {
            throw RefundError(.invalidField, "outcomes: the wallet top-up lines of order \(orderID) must share one outcome")
        }
        if balance == nil, !topUpOutcomes.isEmpty, let customer = order.customer {
            return .needsBalance(customer: customer, currency: order.currency)
        }
        let context = context(caller, childrenActive: childrenActive, balance: balance ?? 0)
        var scratch = states[slot]
        var changes: [OrderChange] = []
        for outcome in [Engine.ModerationOutcome.invalidateNoRefund, .invalidateRefund] {
            let lines = order.lines.map(\.id).filter { outcomes[$0] == outcome }
            guard !lines.isEmpty else { continue }
            let options = RefundOptions(
                lines: lines, method: outcome == .invalidateRefund ? .original : .none, reason: "moderation", note: note)
            let plan = try RefundPlanner.plan(scratch, options, context: context)
            let change = OrderChange.refundCreated(makeRefund(scratch, plan, options, context), options: Partition.recorded(options))
            _ = scratch.apply(change)
            changes.append(change)
        }
        let first = states[slot].refunds.count
        commit(slot, changes)
        assert(states[slot].refunds.count == first + changes.count, "a moderation commits every refund it planned")
        return .created(Array(states[slot].refunds[first...]), attempts: takeDueAttempts(slot, now: context.now))
    }
}
