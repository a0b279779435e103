import Foundation
import RefundCore
import RefundEngine
import Testing

/// Issue 7: money rules that let an order, a refund or a report say something that did not happen.
@Suite struct MoneyRulesTests {
    // MARK: Item 6: a free or comp order with paid tenders

    @Test(arguments: [OrderSource.free, .comp])
    func aFreeOrCompOrderWithPaidTendersIsRejectedAtPut(source: OrderSource) async throws {
        let engine = Fixtures.engine()
        var order = Fixtures.tickets(id: "ord_comp", count: 1, price: 3000)
        order.source = source
        let error = await #expect(throws: RefundError.self) { try await engine.putOrder(order) }
        #expect(error?.code == .orderInvalid)
        #expect(error?.message.contains("source") == true && error?.message.contains("tenders") == true)
        let missing = await #expect(throws: RefundError.self) { try await engine.order("ord_comp") }
        #expect(missing?.code == .orderNotFound)
        #expect(await engine.putOrders([order]).map(\.error.code) == [.orderInvalid])

        // Without money on its tenders it is a valid free order (and cancellable with method none).
        var free = Fixtures.tickets(id: "ord_free", count: 1, price: 0)
        free.source = source
        try await engine.putOrder(free)
        free.tenders = []
        try await engine.putOrder(free)
        let cancelled = try await engine.createRefund(orderID: "ord_free", Fixtures.options(.none), caller: Fixtures.staff)
        #expect(cancelled.status == .succeeded && cancelled.amount == 0)

        // A paid order cannot be replaced by a comp one that keeps its tenders either.
        try await engine.putOrder(Fixtures.tickets(id: "ord_paid", count: 1, price: 3000))
        var replaced = Fixtures.tickets(id: "ord_paid", count: 1, price: 3000)
        replaced.source = source
        let replace = await #expect(throws: RefundError.self) { try await engine.putOrder(replaced) }
        #expect(replace?.code == .orderInvalid)
        #expect(try await engine.order("ord_paid").order.source == .paid)
    }
}

// MARK: Item 13: offline refunds of a wallet share, one truth in code and docs

extension MoneyRulesTests {
    @Test func anOfflineRefundOfAWalletShareCreditsNothingAndTheDocsSaySo() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.contractOrder(id: "ord_off"))
        let before = await engine.balance(customer: "cus_9", currency: .gbp)
        let refund = try await engine.createRefund(orderID: "ord_off", Fixtures.options(.offline), caller: Fixtures.staff)
        let wallet = try #require(refund.transactions.first { $0.method == .wallet })
        #expect(wallet.amount > 0 && wallet.status == .succeeded)
        #expect(await engine.balance(customer: "cus_9", currency: .gbp) == before)

        // docs/money.md: every sentence about offline refunds and credit says that nothing is credited.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/money.md"), encoding: .utf8)
        let prose = text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "  ", with: " ")
        var checked = 0
        for sentence in prose.components(separatedBy: ". ") {
            let lower = sentence.lowercased()
            guard lower.contains("offline"), lower.contains("credit") else { continue }
            checked += 1
            #expect(lower.contains("credits nothing") || lower.contains("credit nothing"), "docs/money.md: \(sentence)")
        }
        #expect(checked >= 2)
    }
}

// MARK: Item 5: refund requests follow the self-service caller rule

extension MoneyRulesTests {
    @Test func onlyTheOrdersCustomerOrStaffMayFileARefundRequest() async throws {
        let engine = Fixtures.engine()
        try await engine.putOrder(Fixtures.tickets(id: "ord_rq", count: 2, customer: "cus_rq"))
        let strangers: [Caller] = [
            Caller(id: "cus_other", permissions: [.selfService]),  // another buyer
            Caller(id: "cus_rq", permissions: []),  // the right id, but no permission to act as the buyer
            Caller(id: "cus_rq", permissions: [.cancel, .recordRecovery]),  // staff-ish, without refund
        ]
        for caller in strangers {
            let error = await #expect(throws: RefundError.self) {
                try await engine.requestRefund(orderID: "ord_rq", lines: nil, reason: "not mine", caller: caller)
            }
            #expect(error?.code == .permissionDenied, "\(caller)")
        }
        #expect(try await engine.order("ord_rq").requests.isEmpty)
        #expect(await engine.openRequests().isEmpty)

        let own = try await engine.requestRefund(orderID: "ord_rq", lines: ["l1"], reason: "cannot go", caller: .customer("cus_rq"))
        #expect(own.requestedBy == "cus_rq")
        let onBehalf = try await engine.requestRefund(
            orderID: "ord_rq", lines: ["l2"], reason: "phoned in", caller: Caller(id: "ops_7", permissions: [.refund]))
        #expect(onBehalf.requestedBy == "ops_7")

        // A box-office order has no customer: no buyer can file on it, staff still can.
        try await engine.putOrder(Fixtures.tickets(id: "ord_box", count: 1, customer: nil))
        let boxOffice = await #expect(throws: RefundError.self) {
            try await engine.requestRefund(orderID: "ord_box", lines: nil, reason: "mine?", caller: .customer("cus_rq"))
        }
        #expect(boxOffice?.code == .permissionDenied)
        _ = try await engine.requestRefund(orderID: "ord_box", lines: nil, reason: "at the desk", caller: Fixtures.staff)
    }
}
