/// One timeline entry as `order.timeline` shows it: the entry (what happened, when, who) and the facts of the
/// refund, transaction or dispute it is about, read from the order's state when the timeline is read: the
/// amount, method, fee kept and note of a refund or cancellation; the amount of a transaction; the note a
/// dispute was closed with. Nothing here is stored twice: a snapshot and the log keep the entries and the
/// refunds and disputes they point at.
public struct TimelineItem: Sendable, Equatable, Codable {
    public var at: Timestamp
    public var kind: TimelineEntry.Kind
    /// Who did it (an actor id), or nil for the gateway and the engine.
    public var by: String?
    public var refundID: String?
    /// The reason of a refund, a request or a dispute; a transaction's tender or failure code; a decision's note.
    public var detail: String?
    /// A refund's or cancellation's total, or one transaction's amount (minor units of `currency`).
    public var amount: Int64?
    public var currency: String?
    /// A refund's method.
    public var method: RefundMethod?
    /// What a refund kept (cancellation fees and fees not refunded).
    public var feeRetained: Int64?
    /// A refund's or cancellation's note, or the note a dispute was closed with.
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case at, kind, by, detail, amount, currency, method, note
        case refundID = "refund_id", feeRetained = "fee_retained"
    }
}

extension OrderState {
    /// The order's timeline with each entry's facts (``TimelineItem``).
    public var timelineItems: [TimelineItem] {
        let currency = order.currency.code
        var closedDisputes = 0
        return timeline.map { entry in
            var item = TimelineItem(at: entry.at, kind: entry.kind, by: entry.by, refundID: entry.refundID, detail: entry.detail)
            let refund = entry.refundID.flatMap { id in refunds.first { $0.id == id } }
            switch entry.kind {
            case .refundCreated, .cancellationCreated:
                if let refund {
                    item.amount = refund.amount
                    item.currency = currency
                    item.method = refund.method
                    item.feeRetained = refund.feeRetained
                    item.note = refund.note
                }
            case .attemptSucceeded, .attemptAccepted:
                // `detail` is the transaction's tender.
                if let refund, let transaction = refund.transactions.first(where: { $0.tender == entry.detail }) {
                    item.amount = transaction.amount
                    item.currency = currency
                }
            case .disputeClosed:
                // The n-th close is the n-th dispute closed (disputes close in order, one open at a time).
                let closed = disputes.filter { !$0.isOpen }
                if closedDisputes < closed.count { item.note = closed[closedDisputes].note }
                closedDisputes += 1
            default:
                break
            }
            return item
        }
    }
}
