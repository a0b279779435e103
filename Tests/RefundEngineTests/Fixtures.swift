import RefundCore
import RefundEngine

/// Orders and engines for the engine tests.
enum Fixtures {
    static let staff = Caller.staff("staff_1")
    static let t0 = Timestamp(iso8601: "2026-11-22T10:00:00Z")!

    /// The contract's section 2 order: one £50 ticket with a £5 discount, card 3000 + wallet 1884.
    static func contractOrder(id: String = "ord_1", event: String = "evt_1") -> Order {
        Order(
            id: id, event: event, eventStartsAt: Timestamp(iso8601: "2026-12-01T19:00:00Z"), customer: "cus_9",
            email: "a@example.com", currency: .gbp, bookingFee: 150,
            lines: [
                OrderLine(
                    id: "l1", ticketType: "tt_ga", price: 5000, discount: 500, tax: 750, processingFee: 135, platformFee: 99)
            ],
            tenders: [
                Tender(id: "t1", method: .card, amount: 3000, gatewayRef: "pi_1"),
                Tender(id: "t2", method: .wallet, amount: 1884),
            ])
    }

    /// `count` tickets of `price` each, paid by one card.
    static func tickets(
        id: String, event: String = "evt_1", count: Int, price: Int64 = 5000, customer: String? = "cus_1",
        email: String? = "b@example.com", parent: String? = nil, startsAt: String = "2026-12-01T19:00:00Z"
    ) -> Order {
        let lines = (1...count).map { OrderLine(id: "l\($0)", ticketType: "tt_ga", price: price) }
        return Order(
            id: id, event: event, eventStartsAt: Timestamp(iso8601: startsAt), customer: customer, email: email,
            currency: .gbp, parent: parent, lines: lines,
            tenders: [Tender(id: "t1", method: .card, amount: price * Int64(count), gatewayRef: "pi_\(id)")])
    }

    static func engine(
        partitions: Int = 4, gateway: SimulatedGateway = SimulatedGateway(), clock: ManualClock = ManualClock(t0)
    ) -> Engine {
        Engine(configuration: EngineConfiguration(partitions: partitions), gateway: gateway, clock: clock)
    }

    static func options(
        _ method: RefundMethod = .original, lines: [String]? = nil, fee: CancellationFee? = nil,
        reason: String = "customer_request"
    ) -> RefundOptions {
        RefundOptions(lines: lines, method: method, fee: fee, reason: reason)
    }
}
