import RefundCore

extension Partition {
    /// `order.put`: store a validated order. Identical content: no-op. New content: replaces it while no refund
    /// exists, else `order_immutable`.
    func put(_ order: Order, by caller: String) throws(RefundError) -> OrderView {
        try ensureRunning()
        let now = shared.clock.now()
        if let slot = slots[order.id] {
            let current = states[slot]
            // Tickets moved since checkout stay where they went (`order.transfer` decides holders after checkout).
            let order = current.keepingTransfers(in: order)
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
        listIndex.inserted(slot, states[slot])
        log(slot, [.placed(order, at: at, by: caller)])
    }
}
