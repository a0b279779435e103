import RefundCore
import RefundEngine
import Testing

/// Every rejected command leaves the state exactly as it was.
@Suite struct BadInputTests {
    /// Everything observable about the engine's state.
    struct Observed: Equatable {
        var orders: [OrderView]
        var events: [OutboxEvent]
        var balance: Int64
        var inventory: [String: Int64]
        var stats: Engine.Statistics
    }

    static func observe(_ engine: Engine) async throws -> Observed {
        Observed(
            orders: [try await engine.order("ord_1"), try await engine.order("ord_2")],
            events: await engine.events(after: 0), balance: await engine.balance(customer: "cus_9", currency: .gbp),
            inventory: await engine.inventoryReleased(), stats: await engine.statistics())
    }

    @Test func rejectedCommandsChangeNothing() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.contractOrder())
        try await engine.putOrder(Fixtures.tickets(id: "ord_2", count: 3))
        try await engine.createRefund(orderID: "ord_2", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        let before = try await Self.observe(engine)

        var unbalanced = Fixtures.contractOrder(id: "ord_1")
        unbalanced.tenders[0].amount += 1
        var badHandle = Fixtures.contractOrder(id: "ord 1")
        badHandle.lines[0].id = "l1"
        var changedAfterRefund = Fixtures.tickets(id: "ord_2", count: 3)
        changedAfterRefund.email = "x@example.com"
        var duplicateLines = Fixtures.tickets(id: "ord_9", count: 2)
        duplicateLines.lines[1].id = "l1"
        var negative = Fixtures.tickets(id: "ord_8", count: 1)
        negative.lines[0].discount = -1
        var overflowing = Fixtures.tickets(id: "ord_7", count: 2)
        overflowing.lines[0].price = .max
        overflowing.lines[1].price = .max

        let attempts: [(String, RefundError.Code, () async throws -> Void)] = [
            ("unbalanced order", .orderUnbalanced, { try await engine.putOrder(unbalanced) }),
            ("bad handle", .invalidHandle, { try await engine.putOrder(badHandle) }),
            ("changed after refund", .orderImmutable, { try await engine.putOrder(changedAfterRefund) }),
            ("duplicate line ids", .duplicateID, { try await engine.putOrder(duplicateLines) }),
            ("negative discount", .invalidAmount, { try await engine.putOrder(negative) }),
            ("overflowing total", .amountOverflow, { try await engine.putOrder(overflowing) }),
            ("unknown order", .orderNotFound, { try await engine.createRefund(orderID: "ord_404", Fixtures.options(), caller: Fixtures.staff) }),
            ("unknown line", .lineNotFound, { try await engine.createRefund(orderID: "ord_2", Fixtures.options(lines: ["l9"]), caller: Fixtures.staff) }),
            ("refunded line", .init(rawValue: "already_refunded"), { try await engine.createRefund(orderID: "ord_2", Fixtures.options(lines: ["l1", "l2"]), caller: Fixtures.staff) }),
            ("fee too big", .feeExceedsRefundable, { try await engine.createRefund(orderID: "ord_2", Fixtures.options(fee: .each(6000)), caller: Fixtures.staff) }),
            ("per-line fee on other line", .lineNotFound, { try await engine.createRefund(orderID: "ord_2", Fixtures.options(lines: ["l2"], fee: .perLine(["l3": 1])), caller: Fixtures.staff) }),
            ("negative fee", .invalidAmount, { try await engine.createRefund(orderID: "ord_2", Fixtures.options(fee: .order(-5)), caller: Fixtures.staff) }),
            ("bad reason", .invalidField, { try await engine.createRefund(orderID: "ord_2", Fixtures.options(reason: ""), caller: Fixtures.staff) }),
            ("no permission", .permissionDenied, { try await engine.createRefund(orderID: "ord_1", Fixtures.options(), caller: Caller(id: "x", permissions: [])) }),
            ("retry a good refund", .invalidState, { try await engine.retry(refundID: "rf_1_ord_2", caller: Fixtures.staff) }),
            ("recover a good refund", .invalidState, { try await engine.recover(refundID: "rf_1_ord_2", action: .other, note: "n", caller: Fixtures.staff) }),
            ("settle a settled refund", .invalidState, { try await engine.settle(refundID: "rf_1_ord_2", tender: "t1", succeeded: true) }),
            ("unknown refund", .refundNotFound, { try await engine.retry(refundID: "rf_7_ord_2", caller: Fixtures.staff) }),
            ("close no dispute", .disputeNotOpen, { try await engine.closeDispute(orderID: "ord_1", outcome: .won, note: nil, caller: Fixtures.staff) }),
            ("request unknown line", .lineNotFound, { _ = try await engine.requestRefund(orderID: "ord_1", lines: ["zz"], reason: "r", caller: .customer("cus_9")) }),
        ]
        for (what, code, attempt) in attempts {
            do {
                try await attempt()
                Issue.record("\(what): expected \(code)")
            } catch let error as RefundError {
                #expect(error.code == code, "\(what)")
                #expect(!error.message.isEmpty)
            }
            #expect(try await Self.observe(engine) == before, "\(what) changed the state")
        }
    }
}
