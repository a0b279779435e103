import RefundCore
import Testing

@testable import RefundEngine

// `order.moderate` with an outcome per line: the ban flow's per-ticket choice. Two refunds made together —
// both or neither — and each line gets the outcome it was given.
@Suite struct ModerationTests {
    static func code(_ body: () async throws(RefundError) -> [Refund]) async -> String? {
        do throws(RefundError) {
            _ = try await body()
            return nil
        } catch { return error.code.rawValue + (error.blocked.first.map { ":" + $0.reason.rawValue } ?? "") }
    }

    @Test func eachLineGetsItsOutcome() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_m", count: 3))
        let refunds = try await engine.moderate(
            orderID: "ord_m", outcomes: ["l3": .invalidateRefund, "l1": .invalidateNoRefund], note: "banned reseller",
            caller: Fixtures.staff)
        #expect(refunds.count == 2)
        // The lines cancelled without money first; then the refunded lines, their money back to the card.
        #expect(refunds[0].method == RefundMethod.none && refunds[0].amount == 0 && refunds[0].lines.map(\.line) == ["l1"])
        #expect(refunds[1].method == .original && refunds[1].amount == 5000 && refunds[1].lines.map(\.line) == ["l3"])
        #expect(refunds.allSatisfy { $0.reason == "moderation" && $0.note == "banned reseller" })
        let state = try await engine.orderState("ord_m")
        #expect(state.lineStatus == [.cancelled, .active, .refunded], "\(state.lineStatus)")
        #expect(state.refunds.count == 2 && state.refunds[1].status == .succeeded)
    }

    @Test func oneOutcomeForEveryLineIsOneRefund() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_m", count: 2))
        let refunds = try await engine.moderate(
            orderID: "ord_m", outcomes: ["l1": .invalidateRefund, "l2": .invalidateRefund], note: nil, caller: Fixtures.staff)
        #expect(refunds.count == 1 && refunds[0].amount == 10_000)
    }

    @Test func whenOneOutcomeCannotBeAppliedNeitherIs() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_m", count: 3))
        try await engine.createRefund(orderID: "ord_m", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        let before = try await engine.orderState("ord_m")
        // l2 is already refunded: the refund of l1 must not happen either.
        let refused = await Self.code { () throws(RefundError) in
            try await engine.moderate(
                orderID: "ord_m", outcomes: ["l1": .invalidateRefund, "l2": .invalidateNoRefund], note: nil,
                caller: Fixtures.staff)
        }
        #expect(refused == "already_refunded:already_refunded", "\(refused ?? "accepted")")
        #expect(try await engine.orderState("ord_m") == before)
        // A caller who may refund but not cancel without money: refused whole.
        let refunder = Caller(id: "refunder", permissions: [.refund])
        #expect(
            await Self.code { () throws(RefundError) in
                try await engine.moderate(
                    orderID: "ord_m", outcomes: ["l1": .invalidateRefund, "l3": .invalidateNoRefund], note: nil,
                    caller: refunder)
            } == "permission_denied")
        #expect(try await engine.orderState("ord_m") == before)
        #expect(
            await Self.code { () throws(RefundError) in
                try await engine.moderate(orderID: "ord_m", outcomes: ["l9": .invalidateRefund], note: nil, caller: Fixtures.staff)
            } == "line_not_found")
        #expect(
            await Self.code { () throws(RefundError) in
                try await engine.moderate(orderID: "ord_m", outcomes: [:], note: nil, caller: Fixtures.staff)
            } == "missing_field")
        #expect(try await engine.orderState("ord_m") == before)
    }

    @Test func bothRefundsAreOneLogRecord() async throws {
        let dir = TemporaryDirectory("moderate")
        let engine = try await Engine.open(
            configuration: EngineConfiguration(partitions: 1), durability: DurabilityOptions(directory: dir.path),
            gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
        try await engine.putOrder(Fixtures.tickets(id: "ord_m", count: 2))
        _ = try await engine.moderate(
            orderID: "ord_m", outcomes: ["l1": .invalidateRefund, "l2": .invalidateNoRefund], note: nil, caller: Fixtures.staff)
        let state = try await engine.orderState("ord_m")
        engine.kill()
        var created: [Int] = []
        try DataDirectoryInspector(directory: dir.path).dumpRecords(logs: ["p0"]) { line in
            created.append(line.components(separatedBy: #""type":"refund_created""#).count - 1)
        }
        #expect(created.contains(2), "both refunds in one record: \(created)")
        let reopened = try await Engine.open(
            configuration: EngineConfiguration(partitions: 1), durability: DurabilityOptions(directory: dir.path),
            gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
        #expect(try await reopened.orderState("ord_m") == state)
        try await reopened.close()
    }

    @Test func walletTopUpLinesShareOneOutcome() async throws {
        let engine = Fixtures.engine()
        var order = Fixtures.tickets(id: "ord_w", count: 1)
        order.lines += [
            OrderLine(id: "w1", kind: .walletTopUp, ticketType: nil, price: 1000),
            OrderLine(id: "w2", kind: .walletTopUp, ticketType: nil, price: 1000),
        ]
        order.tenders[0].amount += 2000
        try await engine.putOrder(order)
        #expect(
            await Self.code { () throws(RefundError) in
                try await engine.moderate(
                    orderID: "ord_w", outcomes: ["w1": .invalidateRefund, "w2": .invalidateNoRefund], note: nil,
                    caller: Fixtures.staff)
            } == "invalid_field")
        let refunds = try await engine.moderate(
            orderID: "ord_w", outcomes: ["w1": .invalidateRefund, "w2": .invalidateRefund, "l1": .invalidateNoRefund],
            note: nil, caller: Fixtures.staff)
        #expect(refunds.count == 2 && refunds[1].amount == 2000)
        #expect(await engine.balance(customer: "cus_1", currency: .gbp) == 0)
    }
}
