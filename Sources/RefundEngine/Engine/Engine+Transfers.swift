import RefundCore

/// Ticket holders: `order.transfer`, `transfer.accept`, `transfer.cancel`, and the members-only rule that needs
/// every partition's view of one purchaser.
extension Engine {
    /// `order.transfer`: moves ticket line `line` to `holder` (nil, or the order's customer: back to the
    /// purchaser), keeping the history (`OrderState.transfers`, and an entry in the timeline). The purchaser stays
    /// the refund owner; a ticket away from them is `transferred_after_checkout` for refunds until it comes back.
    /// With `pending`, the ticket stays where it is until ``decideTransfer(orderID:line:accept:caller:)``; meanwhile
    /// no other transfer of the line starts and the buyer cannot refund it themselves (`transfer_pending`).
    @discardableResult
    public func transferTicket(orderID: String, line: String, to holder: String?, pending: Bool = false, caller: Caller)
        async throws(RefundError) -> OrderView
    {
        let partition = partition(for: orderID)
        let facts = try await partition.transferFacts(orderID, line: line, to: holder)
        // A pending transfer back is checked when it is accepted: only then does the ticket move.
        let held = pending ? nil : try await membersOnlyLock(facts, orderID: orderID, line: line)
        return try await durably(on: partition, releasing: held) { () throws(RefundError) in
            try await partition.transferTicket(orderID, line: line, to: holder, pending: pending, caller: caller)
        }
    }

    /// For a ticket going back to its purchaser in a members-only event: refuses it (`transfer_back_blocked`) when
    /// the purchaser holds another active ticket of the event, in any order, in any partition; otherwise returns
    /// the lock that keeps two such moves for one purchaser and event from both passing the check at once (the
    /// caller releases it once the move is durable). Nil when no check applies.
    private func membersOnlyLock(
        _ facts: (event: String, purchaser: String?, back: Bool), orderID: String, line: String
    ) async throws(RefundError) -> KeyedAsyncLock.Held? {
        guard facts.back, let purchaser = facts.purchaser,
            shared.eventSettings.withLock({ $0[facts.event]?.membersOnly }) == true
        else { return nil }
        let held = await transferBackLocks.acquire("\(facts.event)\u{0}\(purchaser)")
        var count = 0
        for partition in partitions {
            count += await partition.ticketsHeld(event: facts.event, person: purchaser, excludingOrder: orderID, line: line)
        }
        guard count == 0 else {
            await held.release()
            throw RefundError(
                .transferBackBlocked,
                "event \(facts.event) is members-only and \(purchaser) already holds \(count) active ticket\(count == 1 ? "" : "s") of it: line \(line) of order \(orderID) cannot go back to them")
        }
        return held
    }

    /// `transfer.accept` (`accept` true: the ticket moves now) or `transfer.cancel` of the transfer pending on
    /// ticket line `line`.
    @discardableResult
    public func decideTransfer(orderID: String, line: String, accept: Bool, caller: Caller) async throws(RefundError)
        -> OrderView
    {
        let partition = partition(for: orderID)
        var held: KeyedAsyncLock.Held?
        if accept, let facts = try await partition.pendingTransferFacts(orderID, line: line) {
            held = try await membersOnlyLock(facts, orderID: orderID, line: line)
        }
        return try await durably(on: partition, releasing: held) { () throws(RefundError) in
            try await partition.decideTransfer(orderID, line: line, accept: accept, caller: caller)
        }
    }

    /// Runs `move` on `partition` and waits until it is durable; releases `held` (the members-only lock) either way.
    private func durably(
        on partition: Partition, releasing held: KeyedAsyncLock.Held?,
        _ move: () async throws(RefundError) -> OrderView
    ) async throws(RefundError) -> OrderView {
        do throws(RefundError) {
            let view = try await move()
            try await durable(partition)
            await held?.release()
            return view
        } catch {
            await held?.release()
            throw error
        }
    }
}
