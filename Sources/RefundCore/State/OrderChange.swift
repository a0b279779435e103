/// What a gateway attempt (or a later settlement) came to.
public enum AttemptResult: Sendable, Equatable, Hashable {
    /// The money is on its way back.
    case succeeded(reference: String?)
    /// The gateway took the request and will confirm later (`refund.settle`).
    case accepted(reference: String?)
    /// The attempt failed. With `retryAt` another attempt is scheduled; without it the transaction is failed.
    case failed(code: String, retryable: Bool, retryAt: Timestamp?)
    /// No definite answer (timeout, connection reset, an answer array too short): the attempt is sent again at
    /// `retryAt` under the same attempt number, so the same idempotency key, until the gateway says yes or no.
    case unknown(reason: String, retryAt: Timestamp)
}

public enum DisputeOutcome: String, Sendable, Codable, CaseIterable, Hashable {
    case won, lost, withdrawn
}

/// Every change to an order, as a value: what the engine applies, logs, and replays.
///
/// A command is decided against the current state (which may fail, changing nothing); what it decides is a list
/// of changes; applying a change cannot fail and is deterministic, so replaying a log gives the same state.
public enum OrderChange: Sendable, Equatable {
    case placed(Order, at: Timestamp, by: String)
    /// `order.put` with new content before any refund exists.
    case replaced(Order, at: Timestamp, by: String)
    /// A new refund. `options` is kept (for idempotent repeats) when the request had an idempotency key.
    case refundCreated(Refund, options: RefundOptions?)
    /// The outcome of one gateway attempt of transaction `transaction` of refund number `refund`.
    case attemptResult(refund: Int, transaction: Int, result: AttemptResult, at: Timestamp)
    /// A later confirmation of an accepted attempt (`refund.settle`); not a new attempt.
    case settled(refund: Int, transaction: Int, result: AttemptResult, at: Timestamp)
    /// `refund.retry`: the failed transactions of a refund go back to pending, due at `at`.
    case retried(refund: Int, at: Timestamp, by: String)
    case recovered(refund: Int, Recovery)
    case disputeOpened(reason: String?, at: Timestamp, by: String)
    case disputeClosed(outcome: DisputeOutcome, note: String?, at: Timestamp, by: String)
    case requestCreated(RefundRequest)
    case requestDecided(request: Int, approved: Bool, note: String?, refundID: String?, at: Timestamp, by: String)
    case confirmationResent(refund: Int, at: Timestamp, by: String)
    /// An answer for a superseded attempt (``LateAnswer``): recorded, applied to nothing.
    case lateAnswer(refund: Int, LateAnswer)
    /// `order.update`: facts of the order that are not money changed (after refunds too).
    case factsUpdated(OrderFactsUpdate, at: Timestamp, by: String)
    /// `order.transfer`: a ticket moved to another holder (or back to the purchaser).
    case ticketTransferred(TicketTransfer)
    /// The transfer pending on a line accepted (the ticket moves) or cancelled.
    case transferDecided(line: String, accepted: Bool, at: Timestamp, by: String)
}

/// Effects of a change outside its order, collected by the partition: account balance movements and
/// ticket-type inventory released.
public struct ChangeEffects: Sendable, Equatable {
    public var customer: String?
    /// The currency of the order, and so of `balanceDelta`: a customer has one balance per currency.
    public var currency: String = ""
    /// Movement of the customer's account balance (credit > 0).
    public var balanceDelta: Int64 = 0
    /// Ticket types released, one entry per unit.
    public var released: [String] = []
    /// When a replacement changed the customer or currency: the movement undoing the old placement.
    public var previousCustomer: String?
    public var previousCurrency: String = ""
    public var previousBalanceDelta: Int64 = 0
    /// Event the order left, when a replacement moved it.
    public var movedFromEvent: String?

    public init(customer: String?, currency: String = "") {
        self.customer = customer
        self.currency = currency
    }
}

/// A buyer's request for a refund, waiting for staff (contract section 4).
public struct RefundRequest: Sendable, Equatable, Hashable, Codable {
    public enum Status: String, Sendable, Codable, Hashable { case open, approved, declined }

    public var id: String
    public var orderID: String
    public var lines: [String]?
    public var reason: String
    public var requestedBy: String
    public var createdAt: Timestamp
    public var status: Status
    public var adminNote: String?
    public var decidedBy: String?
    public var decidedAt: Timestamp?
    public var refundID: String?

    public init(
        id: String, orderID: String, lines: [String]?, reason: String, requestedBy: String, createdAt: Timestamp,
        status: Status = .open, adminNote: String? = nil, decidedBy: String? = nil, decidedAt: Timestamp? = nil,
        refundID: String? = nil
    ) {
        self.id = id
        self.orderID = orderID
        self.lines = lines
        self.reason = reason
        self.requestedBy = requestedBy
        self.createdAt = createdAt
        self.status = status
        self.adminNote = adminNote
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.refundID = refundID
    }

    enum CodingKeys: String, CodingKey {
        case id, lines, reason, status
        case orderID = "order_id", requestedBy = "requested_by", createdAt = "created_at"
        case adminNote = "admin_note", decidedBy = "decided_by", decidedAt = "decided_at", refundID = "refund_id"
    }
}

/// A payment dispute (chargeback) on an order. While one is open the order refuses refunds.
public struct Dispute: Sendable, Equatable, Hashable, Codable {
    public var reason: String?
    public var openedAt: Timestamp
    public var openedBy: String
    public var outcome: DisputeOutcome?
    public var note: String?
    public var closedAt: Timestamp?
    public var closedBy: String?

    public var isOpen: Bool { closedAt == nil }

    enum CodingKeys: String, CodingKey {
        case reason, outcome, note
        case openedAt = "opened_at", openedBy = "opened_by", closedAt = "closed_at", closedBy = "closed_by"
    }
}

/// One entry of an order's audit timeline. Every change appends at least one.
public struct TimelineEntry: Sendable, Equatable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable, Hashable {
        case orderPlaced = "order.placed"
        case orderReplaced = "order.replaced"
        case refundCreated = "refund.created"
        case cancellationCreated = "order.cancelled"
        case attemptSucceeded = "transaction.succeeded"
        case attemptAccepted = "transaction.accepted"
        case attemptFailed = "transaction.failed"
        case retryScheduled = "transaction.retry_scheduled"
        case refundRetried = "refund.retried"
        case refundRecovered = "refund.recovered"
        case disputeOpened = "dispute.opened"
        case disputeClosed = "dispute.closed"
        case requestCreated = "request.created"
        case requestApproved = "request.approved"
        case requestDeclined = "request.declined"
        case confirmationResent = "confirmation.resent"
        case attemptUnknown = "transaction.unknown"
        case lateAnswer = "transaction.late_answer"
        case orderUpdated = "order.updated"
        case ticketTransferred = "ticket.transferred"
        case transferPending = "ticket.transfer_pending"
        case transferCancelled = "ticket.transfer_cancelled"
    }

    public var at: Timestamp
    public var kind: Kind
    public var by: String?
    public var refundID: String?
    public var detail: String?

    public init(at: Timestamp, kind: Kind, by: String?, refundID: String? = nil, detail: String? = nil) {
        self.at = at
        self.kind = kind
        self.by = by
        self.refundID = refundID
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case at, kind, by, detail
        case refundID = "refund_id"
    }
}
