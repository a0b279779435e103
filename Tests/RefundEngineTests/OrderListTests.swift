import RefundCore
import RefundStorage
import Testing

@testable import RefundEngine

// `order.list` (Engine.orderPage) against a brute-force filter over every order's view: on random histories
// (orders replaced before their first refund, refunds that succeed, fail, stay pending, disputes), for every kind of
// filter and combinations, paged with small pages: sorted by id, nothing twice, nothing missed. Then again after a
// restart (the indexes are rebuilt from a snapshot and the log). A failure prints the seed.

@Suite struct OrderListTests {
    static let events = ["evt_a", "evt_b", "evt_c"]
    static let customers = ["cus_1", "cus_2", "cus_3", "cus_4"]
    static let emails = ["a@example.com", "B@Example.com", "c@example.com"]

    static func order(_ n: Int, _ random: inout SplitMix64) -> Order {
        let lines = (1...Int.random(in: 1...3, using: &random)).map { OrderLine(id: "l\($0)", ticketType: "tt_ga", price: 2000) }
        return Order(
            id: "ord_\(String(n, radix: 36))_\(n % 7)", event: events.randomElement(using: &random) ?? "evt_a",
            customer: Bool.random(using: &random) ? customers.randomElement(using: &random) : nil,
            email: Bool.random(using: &random) ? emails.randomElement(using: &random) : nil, currency: .gbp,
            lines: lines, tenders: [Tender(id: "t1", method: .card, amount: 2000 * Int64(lines.count))])
    }

    /// Every order's row as `order.list` should give it, and the filters to try.
    static func expected(_ engine: Engine, ids: [String], _ filter: OrderFilter) async throws -> [String] {
        var out: [String] = []
        for id in ids {
            let view = try await engine.order(id)
            let order = view.order
            if let event = filter.event, order.event != event { continue }
            if let customer = filter.customer, order.customer != customer { continue }
            if let email = filter.email, order.email?.lowercased() != email.lowercased() { continue }
            if let status = filter.status, view.status != status { continue }
            if let disputed = filter.disputed, view.disputed != disputed { continue }
            switch filter.refunds {
            case .pending:
                if !view.refunds.contains(where: { $0.transactions.contains { $0.status == .pending } }) { continue }
            case .failed:
                if !view.refunds.contains(where: \.needsAttention) { continue }
            case nil: break
            }
            out.append(id)
        }
        return out.sorted()
    }

    static var filters: [OrderFilter] {
        var all: [OrderFilter] = [OrderFilter()]
        for event in events { all.append(OrderFilter(event: event)) }
        for customer in customers { all.append(OrderFilter(customer: customer)) }
        all.append(OrderFilter(email: "b@example.com"))
        all.append(OrderFilter(email: "A@EXAMPLE.COM"))
        for status in [OrderStatus.completed, .partiallyRefunded, .refunded, .cancelled] {
            all.append(OrderFilter(status: status))
            all.append(OrderFilter(event: "evt_a", status: status))
        }
        all.append(OrderFilter(disputed: true))
        all.append(OrderFilter(disputed: false))
        all.append(OrderFilter(refunds: .pending))
        all.append(OrderFilter(refunds: .failed))
        all.append(OrderFilter(customer: "cus_1", refunds: .failed))
        all.append(OrderFilter(event: "evt_b", customer: "cus_2", email: "c@example.com"))
        all.append(OrderFilter(event: "evt_none"))
        return all
    }

    static func check(_ engine: Engine, ids: [String], seed: UInt64, stage: String) async throws {
        for filter in filters {
            let want = try await expected(engine, ids: ids, filter)
            for pageSize in [1, 7, 1000] {
                var got: [String] = []
                var cursor: String?
                var pages = 0
                repeat {
                    let page = try await engine.orderPage(filter, limit: pageSize, after: cursor)
                    #expect(page.items.count <= pageSize)
                    got += page.items.map(\.id)
                    cursor = page.next
                    pages += 1
                } while cursor != nil && pages < 10_000
                #expect(got == want, "\(stage), filter \(filter), page size \(pageSize), seed \(seed)")
            }
        }
    }

    @Test(arguments: [UInt64(21), 22, 23])
    func pagesMatchABruteForceFilter(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let directory = TemporaryDirectory()
        let clock = ManualClock(Fixtures.t0)
        func open() async throws -> Engine {
            try await Engine.open(
                configuration: EngineConfiguration(partitions: 3),
                durability: DurabilityOptions(directory: directory.path, fsync: .always),
                gateway: KeyedGateway(), clock: clock)
        }
        var engine = try await open()
        var ids: [String] = []
        let staff = Caller.staff("staff_1")
        for n in 0..<120 {
            let order = Self.order(n, &random)
            try await engine.putOrder(order)
            ids.append(order.id)
        }
        for _ in 0..<150 {
            let id = ids.randomElement(using: &random) ?? ids[0]
            switch Int.random(in: 0..<8, using: &random) {
            case 0:
                // A new version of the order (other customer, email or event) while it has no refund.
                var changed = Self.order(Int.random(in: 0..<1000, using: &random), &random)
                changed = Order(
                    id: id, event: changed.event, customer: changed.customer, email: changed.email, currency: .gbp,
                    lines: changed.lines, tenders: changed.tenders)
                _ = try? await engine.putOrder(changed)
            case 1:
                _ = try? await engine.openDispute(orderID: id, reason: "fraud", caller: staff)
            case 2:
                _ = try? await engine.closeDispute(orderID: id, outcome: .won, note: nil, caller: staff)
            default:
                let method: RefundMethod = [.original, .original, .none, .offline].randomElement(using: &random) ?? .original
                _ = try? await engine.createRefund(
                    orderID: id, Fixtures.options(method, lines: Bool.random(using: &random) ? ["l1"] : nil), caller: staff)
            }
        }
        try await Self.check(engine, ids: ids, seed: seed, stage: "live")
        try await engine.snapshot()
        for _ in 0..<30 {
            let id = ids.randomElement(using: &random) ?? ids[0]
            _ = try? await engine.createRefund(orderID: id, Fixtures.options(.offline), caller: staff)
        }
        try await engine.close()
        engine = try await open()
        try await Self.check(engine, ids: ids, seed: seed, stage: "after a restart")
        try await engine.close()
    }

    @Test func aBadCursorIsRefused() async throws {
        let engine = Fixtures.engine()
        await #expect(throws: RefundError.self) { try await engine.orderPage(OrderFilter(), after: "p1.0.0.0") }
    }
}
