/// A ticket moved from one holder to another (`order.transfer`). A nil holder is the purchaser: the order's
/// customer, who stays the refund owner whoever holds the ticket (money always goes back to the order's tenders).
public struct TicketTransfer: Sendable, Equatable, Hashable, Codable {
    /// The ticket line.
    public var line: String
    /// Who held it before (nil: the purchaser).
    public var from: String?
    /// Who holds it now (nil: the purchaser).
    public var to: String?
    public var at: Timestamp
    /// Who made the transfer (the caller).
    public var by: String
    /// Done (the ticket moved), pending (asked for, not accepted yet: the ticket has not moved) or cancelled.
    public var status: Status
    /// When and by whom a pending transfer was accepted or cancelled.
    public var decidedAt: Timestamp?
    public var decidedBy: String?

    public enum Status: String, Sendable, Codable, Hashable, CaseIterable {
        case completed, pending, cancelled
    }

    public init(
        line: String, from: String?, to: String?, at: Timestamp, by: String, status: Status = .completed,
        decidedAt: Timestamp? = nil, decidedBy: String? = nil
    ) {
        self.line = line
        self.from = from
        self.to = to
        self.at = at
        self.by = by
        self.status = status
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
    }

    enum CodingKeys: String, CodingKey {
        case line, from, to, at, by, status
        case decidedAt = "decided_at", decidedBy = "decided_by"
    }

    /// The transfer of line `lineID` of `state` to `holder` (nil, or the order's customer: back to the purchaser),
    /// checked against the order: the line must be an active ticket, `holder` a valid handle, and not the one
    /// that holds it already. Nothing about money: a transfer changes who attends, not who is refunded.
    /// With `pending`, the transfer waits to be accepted (``decide(_:line:accept:at:by:)``): the ticket stays
    /// where it is meanwhile, and no other transfer of the line may start.
    public static func make(
        _ state: OrderState, line lineID: String, to holder: String?, pending: Bool = false, at: Timestamp, by: String
    ) throws(RefundError) -> TicketTransfer {
        let order = state.order
        guard let index = order.lineIndex(lineID) else {
            throw RefundError(.lineNotFound, "order \(order.id) has no line '\(lineID.prefix(128))'")
        }
        let line = order.lines[index]
        guard line.kind == .ticket else {
            throw RefundError(.invalidState, "line \(lineID) of order \(order.id) is a \(line.kind.rawValue), not a ticket: it has no holder")
        }
        guard state.lineStatus[index] == .active else {
            throw RefundError(
                .invalidState, "line \(lineID) of order \(order.id) is \(state.lineStatus[index].rawValue): only an active ticket moves")
        }
        if let waiting = state.pendingTransfer(line: lineID) {
            throw RefundError(
                .invalidState,
                "line \(lineID) of order \(order.id) has a transfer pending (to \(state.transfers[waiting].to ?? "its purchaser")): accept or cancel it first")
        }
        if let holder { try Handle.validate(holder, field: "to") }
        let target = holder == order.customer ? nil : holder
        let current = line.holder == order.customer ? nil : line.holder
        // Away from the purchaser when someone else holds it, or when it is marked transferred with no holder
        // known (older data, or the checkout's own flag): then a move back to the purchaser is a move.
        let away = current != nil || line.transferred
        guard target != current || (target == nil && away) else {
            throw RefundError(
                .invalidState, "line \(lineID) of order \(order.id) is already held by \(target ?? "its purchaser")")
        }
        return TicketTransfer(line: lineID, from: current, to: target, at: at, by: by, status: pending ? .pending : .completed)
    }

    /// The change that accepts (the ticket moves now) or cancels the transfer pending on line `lineID`. Refused
    /// (`invalid_state`) when none is pending, and an acceptance when the line is no longer an active ticket.
    public static func decide(
        _ state: OrderState, line lineID: String, accept: Bool, at: Timestamp, by: String
    ) throws(RefundError) -> OrderChange {
        let order = state.order
        guard let index = order.lineIndex(lineID) else {
            throw RefundError(.lineNotFound, "order \(order.id) has no line '\(lineID.prefix(128))'")
        }
        guard state.pendingTransfer(line: lineID) != nil else {
            throw RefundError(.invalidState, "line \(lineID) of order \(order.id) has no transfer pending")
        }
        if accept, state.lineStatus[index] != .active {
            throw RefundError(
                .invalidState,
                "line \(lineID) of order \(order.id) is \(state.lineStatus[index].rawValue): its pending transfer can only be cancelled")
        }
        return .transferDecided(line: lineID, accepted: accept, at: at, by: by)
    }
}

extension OrderState {
    /// `order` (as the checkout sends it again) with the holders that transfers gave its lines since: a line that
    /// moved keeps its holder and `transferred` flag, so re-sending the original order is no change, and a
    /// replacement (before any refund) does not hand a ticket back to whoever the checkout once named.
    public func keepingTransfers(in order: Order) -> Order {
        guard transfers.contains(where: { $0.status == .completed }) else { return order }
        var kept = order
        for index in kept.lines.indices {
            let id = kept.lines[index].id
            guard transfers.contains(where: { $0.line == id && $0.status == .completed }),
                let current = self.order.lineIndex(id)
            else { continue }
            kept.lines[index].holder = self.order.lines[current].holder
            kept.lines[index].transferred = self.order.lines[current].transferred
        }
        return kept
    }
}

/// Where a ticket line is: with its purchaser, with a holder named at checkout (designated), or moved to someone
/// else after checkout (transferred: ``EligibilityReason/transferredAfterCheckout`` blocks its refund).
public enum HolderState: String, Sendable, Codable, Hashable {
    case purchaser, designated, transferred

    /// The state of `line` of an order bought by `purchaser`: transferred while its `transferred` flag is set (a
    /// transfer to someone else, or `order.update`), designated while someone else holds it otherwise, else with
    /// the purchaser.
    public init(_ line: OrderLine, purchaser: String?) {
        if line.transferred {
            self = .transferred
        } else if let holder = line.holder, holder != purchaser {
            self = .designated
        } else {
            self = .purchaser
        }
    }
}
