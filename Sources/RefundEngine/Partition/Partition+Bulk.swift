import RefundCore

/// Bulk event cancellation, partition side: the engine asks each partition once to select its orders, then
/// walks the selection in chunks (one actor hop per chunk of thousands of orders, never one per order).
extension Partition {
    /// Selects this partition's orders of the job's events and filters. Parents (orders in `parents`) come
    /// last, in a second phase, after their children. Returns (orders in phase 1, orders in phase 2, orders the
    /// job already refunded: a job restored after a restart counts them as processed before it walks again).
    func bulkSelect(_ job: BulkJob, parents: Set<String>) -> (Int, Int, done: Int) {
        let request = job.request
        var first: [Int] = []
        var second: [Int] = []
        var done = 0
        var seen = Set<String>()
        for event in request.events where seen.insert(event).inserted {  // an event named twice is walked once
            guard let eventSlots = byEvent[event] else { continue }
            for slot in eventSlots {
                let order = states[slot].order
                if let channel = request.channel, order.channel != channel { continue }
                if let method = request.paymentMethod, !order.tenders.contains(where: { $0.method == method }) { continue }
                if !parents.isEmpty, parents.contains(order.id) { second.append(slot) } else { first.append(slot) }
                if !states[slot].refunds.isEmpty, states[slot].refunds.contains(where: { $0.jobID == job.id }) { done += 1 }
            }
        }
        bulkSelections[job.id] = [first, second]
        return (first.count, second.count, done)
    }

    /// Processes up to `chunk` orders of phase `phase` from `cursor`. Returns the gateway attempts to send
    /// and the next cursor (nil when the phase is done).
    func bulkStep(
        _ job: BulkJob, phase: Int, cursor: Int, chunk: Int, caller: Caller, activeParents: Set<String>
    ) -> (attempts: [PendingAttempt], next: Int?) {
        guard let selection = bulkSelections[job.id]?[phase] else { return ([], nil) }
        let end = min(selection.count, cursor + chunk)
        shared.metrics.bulkOrders.increment(by: end - cursor)
        let options = job.request.options
        let dryRun = job.request.dryRun
        var tally = BulkTally()
        var attempts: [PendingAttempt] = []
        var context = context(caller, childrenActive: false, balance: 0, jobID: job.id)
        // The instant the chunk's refunds are made at, and so their first attempts are due at. One reading of the
        // clock: a second reading for "due" could fall a millisecond earlier than the refunds' own time, and the
        // whole chunk would then wait for the retry scheduler instead of going to the gateway now.
        let now = context.now
        // The chunk's refunds go to the log as one record (their shared fields once), durable together.
        loggingAsOneRecord {
            for position in cursor..<end {
                let slot = selection[position]
                // `states[slot]` is read in place throughout: copying an OrderState retains every field.
                let refundsBefore = states[slot].refunds.count
                // Resuming after a restart: an order this job already refunded was counted as processed when the
                // job was selected again (``bulkSelect``), and is never refunded twice.
                if refundsBefore > 0, states[slot].refunds.contains(where: { $0.jobID == job.id }) {
                    continue  // its refund is already in the job's refund counts
                }
                tally.processed += 1
                if states[slot].hasPendingTransaction {
                    tally.skip(states[slot].order.id, EligibilityReason.refundInProgress.rawValue)
                    continue
                }
                if states[slot].activeLineCount == 0 {
                    tally.skip(states[slot].order.id, EligibilityReason.alreadyRefunded.rawValue)
                    continue
                }
                context.childrenActive = phase == 1 && activeParents.contains(states[slot].order.id)
                let plan: RefundPlan
                do throws(RefundError) {
                    plan = try RefundPlanner.plan(states[slot], options, context: context)
                } catch {
                    tally.skip(states[slot].order.id, error.code.rawValue)
                    continue
                }
                let refund = makeRefund(states[slot], plan, options, context)
                if dryRun {
                    tally.succeeded += 1
                    tally.amounts.add(
                        states[slot].order.currency.code, refunded: refund.amount, feeRetained: refund.feeRetained)
                    continue
                }
                commit(slot, [.refundCreated(refund, options: Partition.recorded(options))])
                if states[slot].refundStatus(number: refundsBefore + 1) == .pending {
                    attempts += takeDueAttempts(slot, now: now)
                }
            }
        }
        job.add(tally)
        flushJobDeltas()
        if end >= selection.count {
            if phase == 1 { bulkSelections[job.id] = nil }
            return (attempts, nil)
        }
        return (attempts, end)
    }
}

extension Partition {
    /// Forgets a job's selection once its walk ended (an aborted job stops before the end of it).
    func dropBulkSelection(_ jobID: String) { bulkSelections[jobID] = nil }
}

extension BulkTally {
    mutating func skip(_ orderID: String, _ reason: String) {
        skipped += 1
        skippedOrders.append(BulkOrderIssue(orderID: orderID, reason: reason))
    }
}
