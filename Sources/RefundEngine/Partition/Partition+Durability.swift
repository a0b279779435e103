import RefundCore

/// Snapshots and replay, partition side.
extension Partition {
    /// The whole partition at the current log position. Cheap: the arrays and every OrderState are
    /// copy-on-write, so this copies references; writes carry on at once and copy only what they touch.
    func captureImage() -> PartitionImage {
        PartitionImage(
            sequence: journal?.lastAppended ?? 0, states: states, balances: balances, released: released, outbox: outbox,
            eventsIssued: max(shared.lastSequence, outbox.last?.sequence ?? 0))
    }

    /// Loads a snapshot image into an empty partition and rebuilds the indexes. Returns the parents its child
    /// orders name.
    func restore(_ image: PartitionImage) -> Set<String> {
        states = image.states
        balances = image.balances
        released = image.released
        outbox = image.outbox
        var parents = Set<String>()
        slots.reserveCapacity(states.count)
        for slot in states.indices {
            let order = states[slot].order
            slots[order.id] = slot
            byEvent[order.event, default: []].append(slot)
            listIndex.inserted(slot, states[slot])
            if let parent = order.parent {
                childrenOf[parent, default: []].append(slot)
                parents.insert(parent)
            }
            refundCount += states[slot].refunds.count
            if states[slot].hasPendingTransaction { pendingSlots.insert(slot) }
            for refund in states[slot].refunds {
                if let jobID = refund.jobID {
                    jobCounts[jobID, default: JobRefundCounts()].add(refund, currency: states[slot].order.currency.code)
                }
            }
        }
        if let last = outbox.last { shared.advanceSequence(past: last.sequence) }
        shared.advanceSequence(past: image.eventsIssued)
        return parents
    }

    /// Hands this partition's counts of job `jobID` to the (recovered) job.
    func publishJobCounts(_ jobID: String) {
        if let job = shared.jobs.job(jobID) { _ = job.update(partition: index, jobCounts[jobID] ?? JobRefundCounts()) }
        dirtyJobs.remove(jobID)
    }

    /// Applies logged commits again, in log order, without logging them. Returns the parents named by orders
    /// placed in the replay and how many entries named an order the partition does not hold (none, unless the
    /// files were tampered with).
    func replay(_ entries: [PartitionJournal.Entry]) -> (parents: Set<String>, orphans: Int) {
        replaying = true
        defer {
            replaying = false
            replayReservations.removeAll()
        }
        var parents = Set<String>()
        var orphans = 0
        for entry in entries {
            replayReservations = entry.outbox
            if case .placed(let order, let at, let by)? = entry.changes.first, slots[order.id] == nil {
                insert(order, by: by, at: at)
                if let parent = order.parent { parents.insert(parent) }
                continue
            }
            guard let slot = slots[entry.orderID] else {
                orphans += 1
                continue
            }
            for change in entry.changes {
                if case .replaced(let order, _, _) = change, let parent = order.parent { parents.insert(parent) }
            }
            commit(slot, entry.changes)
        }
        flushJobDeltas()
        return (parents, orphans)
    }
}
