import RefundCore

/// One shard of the store: the orders whose handle hashes here, and everything derived from them (event index,
/// account-balance movements, inventory released, outbox events). An actor: operations on one order are
/// serialised, operations on different partitions run in parallel.
///
/// Every mutation goes through ``commit(_:_:)``: a decided list of ``OrderChange`` values applied to the order's
/// state. That is the seam the write-ahead log hooks into.
actor Partition {
    let index: Int
    let shared: EngineShared

    var slots: [String: Int] = [:]
    var states: [OrderState] = []
    var byEvent: [String: [Int]] = [:]
    /// Parent order id → slots of its child orders held in this partition.
    var childrenOf: [String: [Int]] = [:]
    /// Customer → Σ balance movements of this partition's orders. A customer's balance is the sum over all
    /// partitions: no cross-partition lock on the hot path, no lost update.
    var balances: [String: Int64] = [:]
    /// Ticket type → units released by this partition's refunds.
    var released: [String: Int64] = [:]
    var outbox: [OutboxEvent] = []
    /// Orders holding a pending transaction (scanned for due attempts).
    var pendingSlots: Set<Int> = []
    /// Gateway attempts sent and not yet answered (not logged: after a crash they are sent again, under the
    /// same idempotency key).
    var inFlight: Set<TransactionRef> = []
    var refundCount = 0
    /// Bulk jobs in progress: job id → the slots of each phase.
    var bulkSelections: [String: [[Int]]] = [:]

    init(index: Int, shared: EngineShared) {
        self.index = index
        self.shared = shared
    }

    // MARK: Commit

    /// Applies decided changes to the order in `slot`, with their effects on balances, inventory, the outbox
    /// and bulk jobs.
    func commit(_ slot: Int, _ changes: [OrderChange]) {
        for change in changes {
            var before: TransactionStatus?
            var touched: Int?
            switch change {
            case .attemptResult(let refund, _, _, _), .settled(let refund, _, _, _), .retried(let refund, _, _):
                touched = refund
                before = states[slot].refund(number: refund)?.status
            default: break
            }
            let effects = states[slot].apply(change)
            absorb(effects)
            if case .refundCreated(let refund, let options) = change {
                refundCount += 1
                refundCreated(slot, refund, notify: options?.notify ?? true, emailText: options?.emailText)
            }
            if let number = touched, let before, let refund = states[slot].refund(number: number), refund.status != before {
                statusChanged(slot, refund, from: before)
            }
        }
        if states[slot].hasPendingTransaction { pendingSlots.insert(slot) } else { pendingSlots.remove(slot) }
    }

    func absorb(_ effects: ChangeEffects) {
        if let customer = effects.customer, effects.balanceDelta != 0 {
            balances[customer, default: 0] &+= effects.balanceDelta
        }
        if let previous = effects.previousCustomer, effects.previousBalanceDelta != 0 {
            balances[previous, default: 0] &+= effects.previousBalanceDelta
        }
        for ticketType in effects.released { released[ticketType, default: 0] &+= 1 }
    }

    private func refundCreated(_ slot: Int, _ refund: Refund, notify: Bool, emailText: String?) {
        let order = states[slot].order
        let email = notify ? order.email : nil
        let first = shared.reserveSequence(refund.status == .succeeded && refund.method != .none ? 2 : 1)
        outbox.append(
            OutboxEvent(
                sequence: first, kind: refund.method == .none ? .orderCancelled : .refundAccepted, at: refund.createdAt,
                orderID: order.id, refundID: refund.id, jobID: refund.jobID, notifyEmail: email, amount: refund.amount,
                currency: order.currency, text: emailText))
        if refund.status == .succeeded && refund.method != .none {
            outbox.append(
                OutboxEvent(
                    sequence: first + 1, kind: .refundCompleted, at: refund.createdAt, orderID: order.id,
                    refundID: refund.id, jobID: refund.jobID, notifyEmail: nil, amount: refund.amount,
                    currency: order.currency, text: nil))
        }
    }

    private func statusChanged(_ slot: Int, _ refund: Refund, from before: TransactionStatus) {
        let order = states[slot].order
        let now = shared.clock.now()
        switch refund.status {
        case .succeeded:
            outbox.append(
                OutboxEvent(
                    sequence: shared.reserveSequence(1), kind: .refundCompleted, at: now, orderID: order.id,
                    refundID: refund.id, jobID: refund.jobID, notifyEmail: nil, amount: refund.amount,
                    currency: order.currency, text: nil))
        case .failed:
            outbox.append(
                OutboxEvent(
                    sequence: shared.reserveSequence(1), kind: .refundFailed, at: now, orderID: order.id,
                    refundID: refund.id, jobID: refund.jobID, notifyEmail: nil, amount: refund.amount,
                    currency: order.currency, text: refund.transactions.compactMap { $0.failures.last?.code }.first))
        case .pending:
            break
        }
        if let jobID = refund.jobID, let job = shared.jobs.job(jobID),
            let done = job.transition(order: order.id, from: before, to: refund.status)
        {
            shared.publishJobEvent(done, kind: .bulkUpdate, text: nil)
        }
    }

    // MARK: Lookup helpers

    func slot(_ orderID: String) throws(RefundError) -> Int {
        guard let slot = slots[orderID] else {
            throw RefundError(.orderNotFound, "no order '\(orderID.prefix(128))'")
        }
        return slot
    }

    func refundNumber(_ refundID: String, in slot: Int) throws(RefundError) -> Int {
        guard let parsed = RefundID.parse(refundID), states[slot].refund(number: parsed.number) != nil else {
            throw RefundError(.refundNotFound, "no refund '\(refundID.prefix(140))'")
        }
        return parsed.number
    }

    func locateRefund(_ refundID: String) throws(RefundError) -> (slot: Int, number: Int) {
        guard let parsed = RefundID.parse(refundID), let slot = slots[parsed.order],
            states[slot].refund(number: parsed.number) != nil
        else { throw RefundError(.refundNotFound, "no refund '\(refundID.prefix(140))'") }
        return (slot, parsed.number)
    }
}

/// A transaction of a refund of an order: what a gateway answer applies to.
struct TransactionRef: Hashable, Sendable {
    var orderID: String
    var refund: Int
    var transaction: Int
}

/// A gateway request with the transaction it belongs to.
struct PendingAttempt: Sendable {
    var ref: TransactionRef
    var request: GatewayRequest
}

/// A gateway answer, routed back to its transaction.
struct AttemptAnswer: Sendable {
    var ref: TransactionRef
    var outcome: GatewayOutcome
}
