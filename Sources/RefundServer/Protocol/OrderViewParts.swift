import RefundCore
import RefundEngine

/// `order.get`'s `include`: with it, the answer is the compact view (status, totals, where each line and tender
/// stands, disputed, and the order's id, event and currency) plus only the heavy parts named. Without it, the full
/// view of protocol 1 (every part).
enum OrderViewPart: String, Sendable, Codable, CaseIterable {
    /// The order as the checkout sent it (every field of every line and tender).
    case order
    /// Every refund of the order, with its transactions.
    case refunds
    /// The buyers' refund requests.
    case requests
}

/// An order view rendered compact, with the parts asked for (`order.get` with `include`).
struct CompactOrderView: Encodable, Sendable {
    var view: OrderView
    var include: Set<OrderViewPart>

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id", event, currency, status, totals, lines, tenders, disputed, order, refunds, requests
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(view.order.id, forKey: .orderID)
        try c.encode(view.order.event, forKey: .event)
        try c.encode(view.order.currency, forKey: .currency)
        try c.encode(view.status, forKey: .status)
        try c.encode(view.totals, forKey: .totals)
        try c.encode(view.lines, forKey: .lines)
        try c.encode(view.tenders, forKey: .tenders)
        try c.encode(view.disputed, forKey: .disputed)
        if include.contains(.order) { try c.encode(view.order, forKey: .order) }
        if include.contains(.refunds) { try c.encode(view.refunds, forKey: .refunds) }
        if include.contains(.requests) { try c.encode(view.requests, forKey: .requests) }
    }
}
