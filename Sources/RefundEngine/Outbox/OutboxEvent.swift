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
    /// Where to send the buyer confirmation; nil when the order has no email or notify was off.
    public var notifyEmail: String?
    public var amount: Int64?
    public var currency: Currency?
    /// Free text for the buyer confirmation (bulk `email_text`), or a summary line.
    public var text: String?

    enum CodingKeys: String, CodingKey {
        case sequence, kind, at, amount, currency, text
        case orderID = "order_id", refundID = "refund_id", jobID = "job_id", notifyEmail = "notify_email"
    }
}
