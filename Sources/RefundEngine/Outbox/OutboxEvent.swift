import RefundCore

/// An event for the embedding service to act on (send the buyer's email, call a webhook), read at-least-once
/// from a cursor (`events.subscribe`).
public struct OutboxEvent: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, Hashable {
        case refundAccepted = "refund.accepted"
        case refundCompleted = "refund.completed"
        case refundFailed = "refund.failed"
        case orderCancelled = "order.cancelled"
        case confirmationResent = "refund.confirmation_resent"
        case bulkSummary = "bulk.summary"
        case bulkUpdate = "bulk.update"
    }

    /// Global, increasing; a subscriber resumes after the last one it handled.
    public var sequence: UInt64
    public var kind: Kind
    public var at: Timestamp
    public var orderID: String?
    public var refundID: String?
    public var jobID: String?
    /// Refund events: whether the buyer is to be told (the refund's `notify`; `refund.confirmation_resent`:
    /// true). Nil on job events.
    public var notify: Bool?
    /// Where to send the buyer confirmation: the order's email when `notify` is true; nil when the order has no
    /// email or notify was off.
    public var notifyEmail: String?
    public var amount: Int64?
    public var currency: Currency?
    /// `refund.failed`: the failure code the event announced; job events: a summary line.
    public var text: String?
    /// Refund events: the text for the buyer confirmation given when the refund was created (`email_text` of
    /// `refund.create` or of the bulk cancellation), if any.
    public var emailText: String?

    init(
        sequence: UInt64, kind: Kind, at: Timestamp, orderID: String? = nil, refundID: String? = nil,
        jobID: String? = nil, notify: Bool? = nil, notifyEmail: String? = nil, amount: Int64? = nil,
        currency: Currency? = nil, text: String? = nil, emailText: String? = nil
    ) {
        self.sequence = sequence
        self.kind = kind
        self.at = at
        self.orderID = orderID
        self.refundID = refundID
        self.jobID = jobID
        self.notify = notify
        self.notifyEmail = notifyEmail
        self.amount = amount
        self.currency = currency
        self.text = text
        self.emailText = emailText
    }

    enum CodingKeys: String, CodingKey {
        case sequence, kind, at, notify, amount, currency, text
        case orderID = "order_id", refundID = "refund_id", jobID = "job_id", notifyEmail = "notify_email"
        case emailText = "email_text"
    }
}
