import Testing

@testable import RefundCore

// A refused self-service refund says which self-service rule failed, not only that one did; the cutoff is the
// context's (the daemon's `--self-service-cutoff-hours`).
@Suite struct SelfServiceRuleTests {
    static let buyer = Caller.customer("cus_9")

    func message(_ order: Order, method: RefundMethod = .balance, lines: [String]? = nil, now: Timestamp = Fixtures.now, cutoff: Int64 = 24)
        -> String?
    {
        let state = Fixtures.place(order)
        do {
            _ = try RefundPlanner.plan(
                state, Fixtures.options(lines: lines, method: method, selfService: true),
                context: Fixtures.context(now: now, caller: Self.buyer, cutoffHours: cutoff))
            return nil
        } catch {
            #expect(error.code.rawValue == "self_service_closed", "\(error)")
            return error.message
        }
    }

    @Test func eachRuleIsNamed() {
        let order = Fixtures.order(lines: Fixtures.tickets([2000]))
        #expect(message(order) == nil, "allowed: balance, a customer, before the cutoff")
        #expect(message(order, method: .original)?.contains("account balance only") == true)
        #expect(message(Fixtures.order(eventStartsAt: nil, lines: Fixtures.tickets([2000])))?.contains("no event start time") == true)
        let late = Fixtures.eventStart.adding(milliseconds: -3 * 3_600_000)
        let closed = message(order, now: late)
        #expect(closed?.contains("closes 24 h before the event") == true, "\(closed ?? "allowed")")
        #expect(closed?.contains("2026-12-01T19:00:00Z") == true && closed?.contains("2026-11-30T19:00:00Z") == true)
        #expect(message(order, now: late, cutoff: 2) == nil, "a 2-hour cutoff is still open 3 hours before")
        let product = Fixtures.order(lines: [OrderLine(id: "p1", kind: .product, price: 900)] + Fixtures.tickets([2000]))
        #expect(message(product, lines: ["p1"])?.contains("line p1 is a product") == true)
    }
}
