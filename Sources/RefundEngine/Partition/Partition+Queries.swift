import RefundCore

/// Reads: one order, cross-partition facts (children, balances, inventory), lists, statistics.
extension Partition {
    func view(_ orderID: String) throws(RefundError) -> OrderView { OrderView(states[try slot(orderID)]) }

    func state(_ orderID: String) throws(RefundError) -> OrderState { states[try slot(orderID)] }

    func timeline(_ orderID: String) throws(RefundError) -> [TimelineEntry] { states[try slot(orderID)].timeline }

    func timelineItems(_ orderID: String) throws(RefundError) -> [TimelineItem] { states[try slot(orderID)].timelineItems }

    func orderSummary(_ orderID: String) -> (customer: String?, currency: Currency, hasTopUps: Bool)? {
        guard let slot = slots[orderID] else { return nil }
        let order = states[slot].order
        let topUps = order.lines.indices.contains { states[slot].lineStatus[$0] == .active && order.lines[$0].kind == .walletTopUp }
        return (order.customer, order.currency, topUps)
    }

    /// Whether any child order of `parent` held here is not fully refunded.
    func hasActiveChildren(of parent: String) -> Bool {
        guard let children = childrenOf[parent] else { return false }
        return children.contains { !states[$0].isFullyRefunded }
    }

    func balance(of customer: String, currency: String) -> Int64 {
        balances[BalanceKey(customer: customer, currency: currency)] ?? 0
    }

    /// The customer's balance movements here, per currency code.
    func balances(of customer: String) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for (key, amount) in balances where key.customer == customer { out[key.currency] = amount }
        return out
    }

    func allStates() -> [OrderState] { states }

    func inventoryReleased() -> [String: Int64] { released }

    // MARK: Listing

    func refunds(event: String?, status: TransactionStatus?, limit: Int) -> [Refund] {
        var out: [Refund] = []
        func scan(_ slot: Int) -> Bool {
            for refund in states[slot].refunds where status == nil || refund.status == status {
                out.append(refund)
                if out.count >= limit { return false }
            }
            return true
        }
        if let event {
            for slot in byEvent[event] ?? [] where !scan(slot) { break }
        } else {
            for slot in states.indices where !scan(slot) { break }
        }
        return out
    }

    func attention(limit: Int) -> [Refund] {
        var out: [Refund] = []
        for slot in pendingOrFailedCandidates() {
            for refund in states[slot].refunds where refund.needsAttention {
                out.append(refund)
                if out.count >= limit { return out }
            }
        }
        return out
    }

    private func pendingOrFailedCandidates() -> [Int] {
        states.indices.filter { slot in states[slot].refunds.contains { $0.status == .failed || !$0.lateAnswers.isEmpty } }
    }

    func openRequests(limit: Int) -> [RefundRequest] {
        var out: [RefundRequest] = []
        for state in states {
            for request in state.requests where request.status == .open {
                out.append(request)
                if out.count >= limit { return out }
            }
        }
        return out
    }

    /// Refunds with a pending transaction, by method (the metrics' pending gauge): only the orders that have one.
    func pendingRefundsByMethod() -> [RefundMethod: Int] {
        var counts: [RefundMethod: Int] = [:]
        for slot in pendingSlots {
            for refund in states[slot].refunds where refund.status == .pending { counts[refund.method, default: 0] += 1 }
        }
        return counts
    }

    func statistics() -> PartitionStatistics {
        var stats = PartitionStatistics(
            orders: states.count, refunds: refundCount, pendingOrders: pendingSlots.count, outboxEvents: outbox.count)
        // Once the engine has stopped, memory may hold changes that never became durable: count only those that
        // did (the last commit at or below the durable log position).
        if let journal, stopped != nil || shared.stopped.withLock({ $0 }) != nil {
            let durable = journal.log.durableSequence
            if let mark = countMarks.last(where: { $0.sequence <= durable }) {
                stats.orders = mark.orders
                stats.refunds = mark.refunds
            }
        }
        return stats
    }

    /// The durable baseline after recovery: everything restored and replayed is on disk.
    func markRecovered() {
        countMarks = [(journal?.lastAppended ?? 0, states.count, refundCount)]
    }
}

struct PartitionStatistics: Sendable {
    var orders: Int
    var refunds: Int
    var pendingOrders: Int
    var outboxEvents: Int
}
