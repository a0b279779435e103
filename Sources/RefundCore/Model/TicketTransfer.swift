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

    public init(line: String, from: String?, to: String?, at: Timestamp, by: String) {
        self.line = line
        self.from = from
        self.to = to
        self.at = at
        self.by = by
    }

    /// The transfer of line `lineID` of `state` to `holder` (nil, or the order's customer: back to the purchaser),
    /// checked against the order: the line must be an active ticket, `holder` a valid handle, and not the one
    /// that holds it already. Nothing about money: a transfer changes who attends, not who is refunded.
    public static func make(
        _ state: OrderState, line lineID: String, to holder: String?, at: Timestamp, by: String
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
        if let holder { try Handle.validate(holder, field: "to") }
        let target = holder == order.customer ? nil : holder
        let current = line.holder == order.customer ? nil : line.holder
        guard target != current else {
            throw RefundError(
                .invalidState, "line \(lineID) of order \(order.id) is already held by \(target ?? "its purchaser")")
        }
        return TicketTransfer(line: lineID, from: current, to: target, at: at, by: by)
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
