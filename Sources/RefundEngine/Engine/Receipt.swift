import RefundCore

/// `refund.receipt`: a refund as a document for people (``text``) and machines (the Codable fields).
public struct Receipt: Sendable, Equatable, Codable {
    public var refundID: String
    public var orderID: String
    public var event: String
    public var currency: Currency
    public var status: TransactionStatus
    public var method: RefundMethod
    public var reason: String
    public var note: String?
    public var createdAt: Timestamp
    public var amount: Int64
    public var feeRetained: Int64
    public var tax: Int64
    public var bookingFee: Int64
    public var lines: [RefundLine]
    public var transactions: [RefundTransaction]

    init(refund: Refund, order: Order) {
        refundID = refund.id
        orderID = order.id
        event = order.event
        currency = order.currency
        status = refund.status
        method = refund.method
        reason = refund.reason
        note = refund.note
        createdAt = refund.createdAt
        amount = refund.amount
        feeRetained = refund.feeRetained
        tax = refund.tax
        bookingFee = refund.bookingFee
        lines = refund.lines
        transactions = refund.transactions
    }

    /// A plain-text receipt.
    public var text: String {
        let c = currency
        var out = "Refund \(refundID)\nOrder \(orderID) (event \(event))\nDate \(createdAt.iso8601)\n"
        out += "Status \(status.rawValue), method \(method.rawValue), reason \(reason)\n"
        if let note { out += "Note \(note)\n" }
        out += "\nLines\n"
        for line in lines {
            out += "  \(line.line): \(c.format(line.amount))"
            if line.feeRetained > 0 { out += " (fee retained \(c.format(line.feeRetained)))" }
            out += ", tax \(c.format(line.tax))\n"
        }
        if bookingFee > 0 { out += "  booking fee: \(c.format(bookingFee))\n" }
        out += "\nPaid back\n"
        for t in transactions {
            out += "  \(t.tender ?? "account balance") (\(t.method.rawValue)): \(c.format(t.amount)), \(t.status.rawValue)"
            out += ", \(t.attempts) attempt\(t.attempts == 1 ? "" : "s")\n"
        }
        out += "\nTotal refunded \(c.format(amount))\nFee retained \(c.format(feeRetained))\nTax refunded \(c.format(tax))\n"
        return out
    }

    enum CodingKeys: String, CodingKey {
        case event, currency, status, method, reason, note, amount, tax, lines, transactions
        case refundID = "refund_id", orderID = "order_id", createdAt = "created_at", feeRetained = "fee_retained"
        case bookingFee = "booking_fee"
    }
}
