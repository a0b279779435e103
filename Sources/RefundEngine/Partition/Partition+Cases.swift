import RefundCore

/// Disputes and buyer refund requests.
extension Partition {
    func openDispute(_ orderID: String, reason: String?, caller: Caller) throws(RefundError) -> OrderView {
        try ensureRunning()
        try caller.require(.refund, for: "opening a dispute")
        let slot = try slot(orderID)
        guard states[slot].openDispute == nil else {
            throw RefundError(.invalidState, "order \(orderID) already has an open dispute")
        }
        if let reason, reason.utf8.count > 4096 { throw RefundError(.invalidField, "reason must be at most 4096 bytes") }
        commit(slot, [.disputeOpened(reason: reason, at: shared.clock.now(), by: caller.id)])
        return OrderView(states[slot])
    }

    func closeDispute(_ orderID: String, outcome: DisputeOutcome, note: String?, caller: Caller) throws(RefundError)
        -> OrderView
    {
        try ensureRunning()
        try caller.require(.refund, for: "closing a dispute")
        let slot = try slot(orderID)
        guard states[slot].openDispute != nil else {
            throw RefundError(.disputeNotOpen, "order \(orderID) has no open dispute")
        }
        commit(slot, [.disputeClosed(outcome: outcome, note: note, at: shared.clock.now(), by: caller.id)])
        return OrderView(states[slot])
    }

    /// `order.update`: facts that are not money change, refunds or not (an update that changes nothing is not
    /// logged).
    func updateOrder(_ orderID: String, _ update: OrderFactsUpdate, caller: Caller) throws(RefundError) -> OrderView {
        try ensureRunning()
        let slot = try slot(orderID)
        try update.validate(against: states[slot].order)
        if update.applied(to: states[slot].order) != states[slot].order {
            commit(slot, [.factsUpdated(update, at: shared.clock.now(), by: caller.id)])
        }
        return OrderView(states[slot])
    }

    /// `refund.request`: a buyer asks for a refund of some lines (all when nil).
    func requestRefund(_ orderID: String, lines: [String]?, reason: String, caller: Caller) throws(RefundError)
        -> RefundRequest
    {
        try ensureRunning()
        let slot = try slot(orderID)
        let state = states[slot]
        try RefundPlanner.checkRequestCaller(state.order, caller)
        guard !reason.isEmpty, reason.utf8.count <= 4096 else {
            throw RefundError(.invalidField, "reason is required (1–4096 bytes of text)")
        }
        if let lines {
            guard !lines.isEmpty else { throw RefundError(.invalidField, "lines must name at least one line when given") }
            for id in lines where state.order.lineIndex(id) == nil {
                throw RefundError(.lineNotFound, "lines: order \(orderID) has no line '\(id.prefix(128))'")
            }
        }
        guard state.activeLineCount > 0 else {
            throw RefundError(.nothingToRefund, "order \(orderID) has no active line to refund")
        }
        let request = RefundRequest(
            id: RequestID.make(order: orderID, number: state.requests.count + 1, run: shared.idRun), orderID: orderID, lines: lines,
            reason: reason, requestedBy: caller.id, createdAt: shared.clock.now())
        commit(slot, [.requestCreated(request)])
        return request
    }

    /// Finds an open request: (order id, request number, the request).
    func openRequest(_ requestID: String) throws(RefundError) -> RefundRequest {
        guard let parsed = RequestID.parse(requestID), let slot = slots[parsed.order],
            parsed.number <= states[slot].requests.count, states[slot].requests[parsed.number - 1].id == requestID
        else { throw RefundError(.requestNotFound, "no refund request '\(requestID.prefix(140))'") }
        let request = states[slot].requests[parsed.number - 1]
        guard request.status == .open else {
            throw RefundError(.invalidState, "request \(requestID) was already \(request.status.rawValue)")
        }
        return request
    }

    func declineRequest(_ requestID: String, note: String?, caller: Caller) throws(RefundError) -> RefundRequest {
        try ensureRunning()
        try caller.require(.refund, for: "declining a refund request")
        let request = try openRequest(requestID)
        guard let parsed = RequestID.parse(requestID), let slot = slots[parsed.order] else {
            throw RefundError(.requestNotFound, "no refund request '\(requestID.prefix(140))'")
        }
        commit(
            slot,
            [.requestDecided(request: parsed.number, approved: false, note: note, refundID: nil, at: shared.clock.now(), by: caller.id)])
        return states[slot].requests[parsed.number - 1].id == request.id ? states[slot].requests[parsed.number - 1] : request
    }
}
