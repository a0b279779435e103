import RefundCore

extension Partition {
    /// `order.put`: store a validated order. Identical content: no-op. New content: replaces it while no refund
    /// exists, else `order_immutable`.
    func put(_ order: Order, by caller: String) throws(RefundError) -> OrderView {
        try ensureRunning()
        let now = shared.clock.now()
        if let slot = slots[order.id] {
            let current = states[slot]
            if current.order == order { return OrderView(current) }
            guard current.refunds.isEmpty else {
                throw RefundError(
                    .orderImmutable, "order \(order.id) already has refunds; its content can no longer change")
            }
            commit(slot, [.replaced(order, at: now, by: caller)])
            return OrderView(states[slot])
        }
        try checkBalanceRoom(for: order)
        insert(order, by: caller)
        return OrderView(states[states.count - 1])
    }

    /// Puts many validated orders in one hop (imports, benchmarks). Returns the errors by input index.
    func putMany(_ orders: [Order], by caller: String) -> [(Int, RefundError)] {
        var errors: [(Int, RefundError)] = []
        if let stopped { return orders.indices.map { ($0, stopped) } }
        states.reserveCapacity(states.count + orders.count)
        slots.reserveCapacity(slots.count + orders.count)
        for (i, order) in orders.enumerated() {
            if slots[order.id] == nil {
                do throws(RefundError) {
                    try checkBalanceRoom(for: order)
                } catch {
                    errors.append((i, error))
                    continue
                }
                insert(order, by: caller)  // the common case: a new order, no view built
                continue
            }
            do throws(RefundError) {
                _ = try put(order, by: caller)
            } catch {
                errors.append((i, error))
            }
        }
        return errors
    }

    /// Refuses an order whose wallet top-ups or spending would push its customer's balance here past `Int64`
    /// (`amount_overflow`), before anything is stored.
    func checkBalanceRoom(for order: Order) throws(RefundError) {
        let effects = OrderState.placementEffects(of: order)
        guard let customer = effects.customer, effects.balanceDelta != 0 else { return }
        let current = balances[BalanceKey(customer: customer, currency: effects.currency)] ?? 0
        guard !current.addingReportingOverflow(effects.balanceDelta).overflow else {
            throw RefundError(
                .amountOverflow,
                "order \(order.id) would take customer \(customer)'s \(effects.currency) balance past a 64-bit amount")
        }
    }

    func insert(_ order: Order, by caller: String, at now: Timestamp? = nil) {
        let at = now ?? shared.clock.now()
        let slot = states.count
        states.append(OrderState(placing: order, at: at, by: caller))
        absorb(OrderState.placementEffects(of: order))
        slots[order.id] = slot
        byEvent[order.event, default: []].append(slot)
        if let parent = order.parent { childrenOf[parent, default: []].append(slot) }
        log(slot, [.placed(order, at: at, by: caller)])
    }

    func view(_ orderID: String) throws(RefundError) -> OrderView { OrderView(states[try slot(orderID)]) }

    func state(_ orderID: String) throws(RefundError) -> OrderState { states[try slot(orderID)] }

    func timeline(_ orderID: String) throws(RefundError) -> [TimelineEntry] { states[try slot(orderID)].timeline }

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
        states.indices.filter { slot in states[slot].refunds.contains { $0.status == .failed } }
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

    /// Events with `sequence < seq ≤ watermark`, at most `limit`.
    func events(after sequence: UInt64, upTo watermark: UInt64, limit: Int) -> [OutboxEvent] {
        // The outbox is appended in sequence order per partition: binary search for the start.
        var low = 0
        var high = outbox.count
        while low < high {
            let mid = (low + high) / 2
            if outbox[mid].sequence <= sequence { low = mid + 1 } else { high = mid }
        }
        var events: [OutboxEvent] = []
        var index = low
        while index < outbox.count, events.count < limit, outbox[index].sequence <= watermark {
            events.append(event(outbox[index]))
            index += 1
        }
        return events
    }

    /// Renders a compact outbox record with what the order and refund say now.
    func event(_ record: OutboxRecord) -> OutboxEvent {
        let state = states[Int(record.slot)]
        let refund = state.refunds[Int(record.refund) - 1]
        var text: String?
        switch record.kind {
        case .refundFailed: text = refund.transactions.compactMap { $0.failures.last?.code }.first
        case .refundAccepted, .orderCancelled:
            text = refund.jobID.flatMap { shared.jobs.job($0)?.request.options.emailText }
        default: break
        }
        return OutboxEvent(
            sequence: record.sequence, kind: record.kind, at: record.at, orderID: state.order.id, refundID: refund.id,
            jobID: refund.jobID, notifyEmail: record.notify ? state.order.email : nil, amount: refund.amount,
            currency: state.order.currency, text: text)
    }

    /// Drops outbox events up to `sequence` (the subscriber has handled them).
    func acknowledgeEvents(upTo sequence: UInt64) {
        outbox.removeAll { $0.sequence <= sequence }
    }

    func statistics() -> PartitionStatistics {
        PartitionStatistics(
            orders: states.count, refunds: refundCount, pendingOrders: pendingSlots.count, outboxEvents: outbox.count)
    }
}

struct PartitionStatistics: Sendable {
    var orders: Int
    var refunds: Int
    var pendingOrders: Int
    var outboxEvents: Int
}
