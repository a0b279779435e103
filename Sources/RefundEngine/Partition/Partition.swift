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
    /// Outbox records: compact (no references), turned into ``OutboxEvent``s when read.
    var outbox: [OutboxRecord] = []
    /// Orders holding a pending transaction (scanned for due attempts).
    var pendingSlots: Set<Int> = []
    /// Gateway attempts sent and not yet answered (not logged: after a crash they are sent again, under the
    /// same idempotency key).
    var inFlight: Set<TransactionRef> = []
    var refundCount = 0
    /// Bulk jobs in progress: job id → the slots of each phase.
    var bulkSelections: [String: [[Int]]] = [:]
    /// Bulk-job status transitions not yet handed to their jobs (see ``flushJobDeltas()``).
    var jobDeltas: [String: BulkJobDelta] = [:]

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
                before = states[slot].refundStatus(number: refund)
            default: break
            }
            let effects = states[slot].apply(change)
            absorb(effects)
            if case .refundCreated(let refund, let options) = change {
                refundCount += 1
                refundCreated(slot, refund, notify: options?.notify ?? true, emailText: options?.emailText)
            }
            if let number = touched, let before, let after = states[slot].refundStatus(number: number), after != before {
                statusChanged(slot, states[slot].refunds[number - 1], number: number, from: before)
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
        let number = Int32(states[slot].refunds.count)
        let completed = refund.status == .succeeded && refund.method != .none
        let first = shared.reserveSequence(completed ? 2 : 1)
        outbox.append(
            OutboxRecord(
                sequence: first, at: refund.createdAt, slot: Int32(slot), refund: number,
                kind: refund.method == .none ? .orderCancelled : .refundAccepted, notify: notify))
        if completed {
            outbox.append(
                OutboxRecord(
                    sequence: first + 1, at: refund.createdAt, slot: Int32(slot), refund: number, kind: .refundCompleted,
                    notify: false))
        }
    }

    private func statusChanged(_ slot: Int, _ refund: Refund, number: Int, from before: TransactionStatus) {
        let now = shared.clock.now()
        switch refund.status {
        case .succeeded:
            outbox.append(
                OutboxRecord(
                    sequence: shared.reserveSequence(1), at: now, slot: Int32(slot), refund: Int32(number),
                    kind: .refundCompleted, notify: false))
        case .failed:
            outbox.append(
                OutboxRecord(
                    sequence: shared.reserveSequence(1), at: now, slot: Int32(slot), refund: Int32(number),
                    kind: .refundFailed, notify: false))
        case .pending:
            break
        }
        let order = states[slot].order
        if let jobID = refund.jobID {
            jobDeltas[jobID, default: BulkJobDelta()].record(order: order.id, from: before, to: refund.status)
        }
    }

    /// Hands the bulk-job transitions gathered since the last flush to their jobs, one lock each per batch
    /// instead of one per refund. Called at the end of every operation that can settle a transaction.
    func flushJobDeltas() {
        guard !jobDeltas.isEmpty else { return }
        for (jobID, delta) in jobDeltas {
            if let job = shared.jobs.job(jobID), let done = job.apply(delta) {
                shared.publishJobEvent(done, kind: .bulkUpdate, text: nil)
            }
        }
        jobDeltas.removeAll(keepingCapacity: true)
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

/// An outbox entry as a partition keeps it: 32 bytes, no references (a bulk cancellation writes two per order).
struct OutboxRecord: Sendable {
    var sequence: UInt64
    var at: Timestamp
    var slot: Int32
    var refund: Int32
    var kind: OutboxEvent.Kind
    /// Whether the buyer should get a confirmation (the refund's `notify`).
    var notify: Bool
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
