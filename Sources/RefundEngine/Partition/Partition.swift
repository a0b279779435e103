import RefundCore
import RefundStorage

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
    /// `order.list`'s indexes (customer, email, status, disputed, failed) and its sorted views.
    var listIndex = OrderListIndex()
    /// Parent order id → slots of its child orders held in this partition.
    var childrenOf: [String: [Int]] = [:]
    /// Customer → Σ balance movements of this partition's orders. A customer's balance is the sum over all
    /// partitions: no cross-partition lock on the hot path, no lost update.
    var balances: [BalanceKey: Int64] = [:]
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
    /// Per bulk job: its refunds in this partition, counted by status (see ``JobRefundCounts``).
    var jobCounts: [String: JobRefundCounts] = [:]
    /// Jobs whose counts changed since the last ``flushJobDeltas()``.
    var dirtyJobs: Set<String> = []

    /// The partition's write-ahead log; nil for an in-memory engine.
    nonisolated let journal: PartitionJournal?
    /// Set when the log failed: the partition refuses everything after (nothing more can be acknowledged).
    var stopped: RefundError?
    /// True while replaying the log at start-up: changes are applied, not logged again.
    var replaying = false
    /// Outbox sequence ranges reserved by the commit in progress (logged with it).
    var commitReservations: [(first: UInt64, count: Int)] = []
    /// (log position, orders, refunds) after recent commits, oldest first: what `stats` reports once the engine
    /// has stopped, so it counts only what is durable. Trimmed to the last durable mark as the log moves on.
    var countMarks: [(sequence: UInt64, orders: Int, refunds: Int)] = []
    /// Commits waiting to be logged as one record (see ``loggingAsOneRecord(_:)``); nil when none is open.
    var openBatch: [CommitBatchCodec.Entry]?
    /// The estimated bytes of the open batch (``CommitBatchCodec/estimatedSize(_:)``).
    var openBatchBytes = 0
    /// During replay: the ranges the original commit reserved, handed out again in order.
    var replayReservations: [(first: UInt64, count: Int)] = []

    init(index: Int, shared: EngineShared, journal: PartitionJournal? = nil) {
        self.index = index
        self.shared = shared
        self.journal = journal
    }

    /// Throws `engine_stopped` once the log has failed.
    func ensureRunning() throws(RefundError) {
        if let stopped { throw stopped }
        if let engineStopped = shared.stopped.withLock({ $0 }) {
            stopped = engineStopped
            throw engineStopped
        }
    }

    /// Reserves `count` consecutive outbox sequence numbers (the same ones again during a replay).
    func reserveSequence(_ count: Int) -> UInt64 {
        if replaying, !replayReservations.isEmpty {
            let range = replayReservations.removeFirst()
            shared.advanceSequence(past: range.first + UInt64(range.count) - 1)
            return range.first
        }
        let first = shared.reserveSequence(count)
        commitReservations.append((first, count))
        return first
    }

    /// Logs a decided commit of the order in `slot`. A failed append stops the partition: the change is in
    /// memory but can never be acknowledged, and nothing after it may be. Inside ``loggingAsOneRecord(_:)`` the
    /// commit waits in the open batch instead.
    func log(_ slot: Int, _ changes: [OrderChange]) {
        defer { commitReservations.removeAll(keepingCapacity: true) }
        guard let journal, !replaying else { return }
        if openBatch != nil {
            let entry = CommitBatchCodec.Entry(
                outbox: commitReservations.map { CommitBatchCodec.OutboxRange(first: $0.first, count: $0.count) },
                orderID: states[slot].order.id, changes: changes)
            openBatchBytes += CommitBatchCodec.estimatedSize(entry)
            openBatch?.append(entry)
            // A record has a size limit (16 MiB): a chunk of large refunds (long buyer notices, many lines) goes
            // out as several records, each cut well before it.
            if openBatchBytes >= Self.batchRecordBytes { appendOpenBatch() }
            return
        }
        appended { () throws(StorageError) in
            try journal.append(orderID: states[slot].order.id, changes: changes, outbox: commitReservations)
        }
    }

    /// Runs `body` (commits made in this actor turn) and logs every commit it made as one record: one log append,
    /// one record header and one set of shared fields for a bulk chunk's thousands of refunds or a batch of
    /// gateway answers, instead of one record each. The commits become durable together; nothing is
    /// acknowledged or sent to the gateway before the caller waits for the log, as for single commits.
    func loggingAsOneRecord<T>(_ body: () -> T) -> T {
        guard journal != nil, !replaying, openBatch == nil else { return body() }
        openBatch = []
        let result = body()
        appendOpenBatch()
        openBatch = nil
        return result
    }

    /// The estimated size at which an open batch is appended and a new one begun (see ``log(_:_:)``).
    static let batchRecordBytes = 1 << 20

    /// Appends the commits of the open batch (one alone as a plain record) and leaves the batch open, empty.
    private func appendOpenBatch() {
        let batch = openBatch ?? []
        openBatch = []
        openBatchBytes = 0
        guard let journal else { return }
        if batch.count == 1, let only = batch.first {
            appended { () throws(StorageError) in
                try journal.append(orderID: only.orderID, changes: only.changes, outbox: only.outbox.map { ($0.first, $0.count) })
            }
        } else if !batch.isEmpty {
            appended { () throws(StorageError) in try journal.append(batch: batch) }
        }
    }

    /// Runs one append and notes the counts at its log position; a failed append stops the partition, and a
    /// stopped partition appends nothing more (a later commit must never be durable where an earlier one was
    /// refused, even when the log itself is still healthy, as after a record over the size limit).
    private func appended(_ append: () throws(StorageError) -> UInt64) {
        guard let journal, stopped == nil else { return }
        do throws(StorageError) {
            let sequence = try append()
            countMarks.append((sequence, states.count, refundCount))
            if countMarks.count > 64 {
                let durable = journal.log.durableSequence
                if let keep = countMarks.lastIndex(where: { $0.sequence <= durable }), keep > 0 {
                    countMarks.removeFirst(keep)
                }
            }
        } catch {
            stopped = shared.failStop(error, log: "write-ahead log of partition \(index)")
        }
    }

    // MARK: Commit

    /// Applies decided changes to the order in `slot`, with their effects on balances, inventory, the outbox
    /// and bulk jobs.
    func commit(_ slot: Int, _ changes: [OrderChange]) {
        var replaced: Order?
        for change in changes {
            if case .replaced(let newOrder, _, _) = change {
                if replaced == nil { replaced = states[slot].order }
                reindex(slot, replacingWith: newOrder)
            }
            if case .confirmationResent(let number, let at, _) = change {
                outbox.append(
                    OutboxRecord(
                        sequence: reserveSequence(1), at: at, slot: Int32(slot), refund: Int32(number),
                        kind: .confirmationResent, notify: true))
            }
            var before: TransactionStatus?
            var touched: Int?
            var changedAt: Timestamp?
            /// A bulk job's refund whose transactions this change moves: the job and the refund's money before.
            var jobMoney: (job: String, before: BulkAmounts)?
            switch change {
            case .attemptResult(let refund, _, _, let at), .settled(let refund, _, _, let at), .retried(let refund, let at, _):
                touched = refund
                changedAt = at
                before = states[slot].refundStatus(number: refund)
                if refund >= 1, refund <= states[slot].refunds.count, let jobID = states[slot].refunds[refund - 1].jobID {
                    jobMoney = (jobID, BulkAmounts(states[slot].refunds[refund - 1]))
                }
            default: break
            }
            let effects = states[slot].apply(change)
            absorb(effects)
            if let jobMoney, let number = touched {
                jobCounts[jobMoney.job, default: JobRefundCounts()].moveMoney(
                    from: jobMoney.before, to: BulkAmounts(states[slot].refunds[number - 1]),
                    currency: states[slot].order.currency.code)
                dirtyJobs.insert(jobMoney.job)
            }
            if case .refundCreated(let refund, _) = change {
                refundCount += 1
                if let jobID = refund.jobID {
                    jobCounts[jobID, default: JobRefundCounts()].add(refund, currency: states[slot].order.currency.code)
                    dirtyJobs.insert(jobID)
                }
                refundCreated(slot, refund)
                if !replaying { shared.metrics.refundCreated(refund, currency: states[slot].order.currency.code) }
            }
            if let number = touched, let before, let after = states[slot].refundStatus(number: number), after != before {
                if !replaying { shared.metrics.refundSettled(states[slot].refunds[number - 1]) }
                statusChanged(
                    slot, states[slot].refunds[number - 1], number: number, from: before, at: changedAt ?? shared.clock.now())
            }
        }
        if states[slot].hasPendingTransaction { pendingSlots.insert(slot) } else { pendingSlots.remove(slot) }
        listIndex.changed(slot, states[slot], previous: replaced)
        log(slot, changes)
    }

    /// Keeps the event and parent indexes right when an order's content is replaced.
    private func reindex(_ slot: Int, replacingWith order: Order) {
        let old = states[slot].order
        if old.event != order.event {
            byEvent[old.event]?.removeAll { $0 == slot }
            byEvent[order.event, default: []].insertSorted(slot)  // kept ascending: pages start by binary search
        }
        if old.parent != order.parent {
            if let parent = old.parent { childrenOf[parent]?.removeAll { $0 == slot } }
            if let parent = order.parent { childrenOf[parent, default: []].append(slot) }
        }
    }

    func absorb(_ effects: ChangeEffects) {
        if let customer = effects.customer, effects.balanceDelta != 0 {
            balances[BalanceKey(customer: customer, currency: effects.currency), default: 0].addSaturating(effects.balanceDelta)
        }
        if let previous = effects.previousCustomer, effects.previousBalanceDelta != 0 {
            balances[BalanceKey(customer: previous, currency: effects.previousCurrency), default: 0]
                .addSaturating(effects.previousBalanceDelta)
        }
        for ticketType in effects.released { released[ticketType, default: 0] += 1 }  // units: cannot reach Int64.max
    }

    /// The refund's events carry its `notify` as it was created (a fact, kept on the refund).
    private func refundCreated(_ slot: Int, _ refund: Refund) {
        let number = Int32(states[slot].refunds.count)
        let completed = refund.status == .succeeded && refund.method != .none
        let first = reserveSequence(completed ? 2 : 1)
        outbox.append(
            OutboxRecord(
                sequence: first, at: refund.createdAt, slot: Int32(slot), refund: number,
                kind: refund.method == .none ? .orderCancelled : .refundAccepted, notify: refund.notify))
        if completed {
            outbox.append(
                OutboxRecord(
                    sequence: first + 1, at: refund.createdAt, slot: Int32(slot), refund: number, kind: .refundCompleted,
                    notify: refund.notify))
        }
    }

    /// `at` is the change's own time, never the clock's: a replay under another clock must give the same events.
    private func statusChanged(_ slot: Int, _ refund: Refund, number: Int, from before: TransactionStatus, at now: Timestamp) {
        switch refund.status {
        case .succeeded:
            outbox.append(
                OutboxRecord(
                    sequence: reserveSequence(1), at: now, slot: Int32(slot), refund: Int32(number),
                    kind: .refundCompleted, notify: refund.notify))
        case .failed:
            var detail: Int32 = -1
            if let t = refund.transactions.lastIndex(where: { $0.status == .failed }), t < 1 << 14,
                !refund.transactions[t].failures.isEmpty, refund.transactions[t].failures.count <= 1 << 16
            {
                detail = Int32(t) << 16 | Int32(refund.transactions[t].failures.count - 1)
            }
            outbox.append(
                OutboxRecord(
                    sequence: reserveSequence(1), at: now, slot: Int32(slot), refund: Int32(number),
                    kind: .refundFailed, notify: refund.notify, detail: detail))
        case .pending:
            break
        }
        let order = states[slot].order
        if let jobID = refund.jobID {
            jobCounts[jobID, default: JobRefundCounts()].move(order.id, to: before, by: -1)
            jobCounts[jobID, default: JobRefundCounts()].move(order.id, to: refund.status, by: 1)
            dirtyJobs.insert(jobID)
        }
    }

    /// Hands the refund counts of the bulk jobs touched since the last flush to their jobs: one lock per job
    /// per batch, not per refund. Called at the end of every operation that can create or settle a job's refund.
    func flushJobDeltas() {
        guard !dirtyJobs.isEmpty else { return }
        for jobID in dirtyJobs {
            if let job = shared.jobs.job(jobID), let counts = jobCounts[jobID],
                let done = job.update(partition: index, counts)
            {
                if let journal, !replaying {
                    // Announced once the change that completed the job is durable (EngineShared.deferredJobEvents).
                    shared.deferJobEvent(done, partition: index, sequence: journal.lastAppended)
                } else {
                    shared.publishJobEvent(done, kind: .bulkUpdate, text: nil)
                }
            }
        }
        dirtyJobs.removeAll(keepingCapacity: true)
    }

    // MARK: Lookup helpers

    func slot(_ orderID: String) throws(RefundError) -> Int {
        guard let slot = slots[orderID] else {
            throw RefundError(.orderNotFound, "no order '\(orderID.prefix(128))'")
        }
        return slot
    }

    func refundNumber(_ refundID: String, in slot: Int) throws(RefundError) -> Int {
        // The whole id must match: the number alone could name a refund made under another run number.
        guard let parsed = RefundID.parse(refundID), states[slot].refund(number: parsed.number)?.id == refundID else {
            throw RefundError(.refundNotFound, "no refund '\(refundID.prefix(140))'")
        }
        return parsed.number
    }

    func locateRefund(_ refundID: String) throws(RefundError) -> (slot: Int, number: Int) {
        guard let parsed = RefundID.parse(refundID), let slot = slots[parsed.order],
            states[slot].refund(number: parsed.number)?.id == refundID
        else { throw RefundError(.refundNotFound, "no refund '\(refundID.prefix(140))'") }
        return (slot, parsed.number)
    }
}

/// A customer's balance in one currency: balances never mix currencies.
struct BalanceKey: Hashable, Sendable {
    var customer: String
    var currency: String
}

/// An outbox entry as a partition keeps it: 32 bytes, no references (a bulk cancellation writes two per order).
struct OutboxRecord: Sendable {
    var sequence: UInt64
    var at: Timestamp
    var slot: Int32
    var refund: Int32
    var kind: OutboxEvent.Kind
    /// Whether the buyer should be told: the refund's `notify` (`refund.confirmation_resent`: always), kept with the
    /// record and in snapshots, so the event says the same whenever it is read.
    var notify: Bool
    /// What the event announced that can change later, as a fact: for `refund.failed`, which failure
    /// (transaction index << 16 | failure ordinal), so reading it later or after a restart gives the code it
    /// announced, not today's. -1: nothing.
    var detail: Int32 = -1
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
