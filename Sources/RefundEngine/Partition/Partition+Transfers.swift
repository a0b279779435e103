import RefundCore

/// Ticket holders, partition side: transfers and their decisions, and what the engine's members-only check asks
/// of each partition.
extension Partition {
    /// `order.transfer`: a ticket moves to another holder (nil: back to the purchaser), refunds or not.
    func transferTicket(_ orderID: String, line: String, to holder: String?, pending: Bool, caller: Caller)
        throws(RefundError) -> OrderView
    {
        try ensureRunning()
        let slot = try slot(orderID)
        let transfer = try TicketTransfer.make(
            states[slot], line: line, to: holder, pending: pending, at: shared.clock.now(), by: caller.id)
        commit(slot, [.ticketTransferred(transfer)])
        return OrderView(states[slot])
    }

    /// What a transfer of `line` to `holder` would be, for the engine's members-only check: the order's event and
    /// purchaser, and whether the ticket would go back to the purchaser. (Checked again when it is made.)
    func transferFacts(_ orderID: String, line: String, to holder: String?) throws(RefundError)
        -> (event: String, purchaser: String?, back: Bool)
    {
        let state = states[try slot(orderID)]
        let target = holder == state.order.customer ? nil : holder
        return (state.order.event, state.order.customer, target == nil)
    }

    /// The transfer pending on `line`, as ``transferFacts(_:line:to:)`` (nil when none is pending).
    func pendingTransferFacts(_ orderID: String, line: String) throws(RefundError)
        -> (event: String, purchaser: String?, back: Bool)?
    {
        let state = states[try slot(orderID)]
        guard let waiting = state.pendingTransfer(line: line) else { return nil }
        return (state.order.event, state.order.customer, state.transfers[waiting].to == nil)
    }

    /// Active tickets of `event` that `person` holds in this partition, leaving out line `line` of `orderID`:
    /// lines they were named holder of, and lines of their own orders that nobody else holds.
    func ticketsHeld(event: String, person: String, excludingOrder orderID: String, line: String) -> Int {
        var held = 0
        for slot in byEvent[event] ?? [] {
            let order = states[slot].order
            for (index, ticket) in order.lines.enumerated() where ticket.kind == .ticket {
                guard states[slot].lineStatus[index] == .active, !(order.id == orderID && ticket.id == line) else { continue }
                let holder = ticket.holder == order.customer ? nil : ticket.holder
                if holder == person || (holder == nil && !ticket.transferred && order.customer == person) { held += 1 }
            }
        }
        return held
    }

    /// `transfer.accept` / `transfer.cancel`: the transfer pending on a line is accepted (the ticket moves) or
    /// cancelled.
    func decideTransfer(_ orderID: String, line: String, accept: Bool, caller: Caller) throws(RefundError) -> OrderView {
        try ensureRunning()
        let slot = try slot(orderID)
        commit(slot, [try TicketTransfer.decide(states[slot], line: line, accept: accept, at: shared.clock.now(), by: caller.id)])
        return OrderView(states[slot])
    }
}
