import RefundCore

/// Deterministic synthetic orders for demos, benchmarks and load tests: an event of N orders with 1–6 ticket
/// lines each, 70% paid by one card, 30% split between a card and the customer's wallet.
public struct SyntheticEvent: Sendable {
    public var event: String
    public var orders: Int
    public var seed: UInt64
    public var currency: Currency
    public var startsAt: Timestamp

    public init(
        event: String = "evt_demo", orders: Int, seed: UInt64 = 7, currency: Currency = .gbp,
        startsAt: Timestamp = Timestamp(iso8601: "2026-12-31T19:00:00Z") ?? Timestamp(milliseconds: 0)
    ) {
        self.event = event
        self.orders = orders
        self.seed = seed
        self.currency = currency
        self.startsAt = startsAt
    }

    /// Order `i` of the event (0-based); the same every time for the same seed.
    public func order(_ i: Int) -> Order {
        var rng = SplitMix64(seed: seed &+ UInt64(i) &* 0x9E37_79B9)
        let lineCount = 1 + Int(rng.next() % 6)
        var lines: [OrderLine] = []
        lines.reserveCapacity(lineCount)
        var total: Int64 = 0
        for l in 0..<lineCount {
            let price = Int64(1500 + (rng.next() % 60) * 250)
            let discount: Int64 = rng.next() % 10 == 0 ? 500 : 0
            let paid = price - discount
            let line = OrderLine(
                id: "l\(l + 1)", kind: .ticket, ticketType: "tt_\(rng.next() % 4)", price: price, discount: discount,
                tax: paid / 6, processingFee: paid * 3 / 100, platformFee: 99)
            total += paid + line.processingFee + line.platformFee
            lines.append(line)
        }
        let bookingFee: Int64 = 150
        total += bookingFee
        let tenders: [Tender]
        if rng.next() % 10 < 7 {
            tenders = [Tender(id: "t1", method: .card, amount: total, gatewayRef: "pi_\(i)")]
        } else {
            let wallet = min(total, Int64(500 + rng.next() % 2000))
            tenders = [
                Tender(id: "t1", method: .card, amount: total - wallet, gatewayRef: "pi_\(i)"),
                Tender(id: "t2", method: .wallet, amount: wallet),
            ]
        }
        return Order(
            id: "ord_\(i)", event: event, eventStartsAt: startsAt, customer: "cus_\(i % 50_000)",
            email: i % 4 == 0 ? nil : "buyer\(i)@example.com", currency: currency, channel: .online, source: .paid,
            bookingFee: bookingFee, lines: lines, tenders: tenders)
    }

    public func allOrders() -> [Order] { (0..<orders).map(order) }
}
