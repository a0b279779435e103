import Foundation
import Testing

@testable import RefundCore

/// The JSON shapes of the contract (sections 2–4) decode and encode as documented.
@Suite struct ContractJSONTests {
    static let orderJSON = """
        {"id":"ord_1","event":"evt_1","event_starts_at":"2026-12-01T19:00:00Z","customer":"cus_9",
         "email":"a@example.com","currency":"GBP","channel":"online","source":"paid","parent":null,
         "frozen":false,"sync_pending":false,"booking_fee":150,
         "lines":[{"id":"l1","kind":"ticket","ticket_type":"tt_ga","price":5000,"discount":500,"tax":750,
                   "processing_fee":135,"platform_fee":99,"transferred":false,"claimed":false}],
         "tenders":[{"id":"t1","method":"card","amount":3000,"gateway_ref":"pi_1"},
                    {"id":"t2","method":"wallet","amount":1884}]}
        """

    @Test func sectionTwoOrderDecodes() throws {
        let order = try JSONDecoder().decode(Order.self, from: Data(Self.orderJSON.utf8))
        #expect(order == Fixtures.contractOrder())
        try OrderValidation.validate(order)
        #expect(!order.isBoxOffice)
        #expect(order.lineIndex("l1") == 0)
        #expect(order.lineIndex("l9") == nil)
    }

    @Test func orderDefaults() throws {
        let json = """
            {"id":"o","event":"e","currency":"JPY","lines":[{"id":"l","price":100}]}
            """
        let order = try JSONDecoder().decode(Order.self, from: Data(json.utf8))
        #expect(order.channel == .online && order.source == .paid && !order.frozen && !order.syncPending)
        #expect(order.bookingFee == 0 && order.tenders.isEmpty && order.customer == nil && order.isBoxOffice)
        #expect(order.lines[0] == OrderLine(id: "l", kind: .ticket, price: 100))
    }

    @Test func refundOptionsDefaults() throws {
        let json = #"{"method":"original","reason":"event_cancelled"}"#
        let options = try JSONDecoder().decode(RefundOptions.self, from: Data(json.utf8))
        #expect(options == RefundOptions(method: .original, reason: "event_cancelled"))
        #expect(options.includeProcessingFees && !options.includePlatformFees && !options.includeBookingFee)
        #expect(options.policy == .standard && options.restock && options.notify && !options.selfService)
        #expect(options.lines == nil && options.fee == nil)
    }

    @Test(arguments: [
        (#"{"per_line":{"l1":500}}"#, CancellationFee.perLine(["l1": 500])), (#"{"each":500}"#, .each(500)),
        (#"{"order":500}"#, .order(500)),
    ])
    func cancellationFeeShapes(json: String, fee: CancellationFee) throws {
        #expect(try JSONDecoder().decode(CancellationFee.self, from: Data(json.utf8)) == fee)
        let roundTrip = try JSONDecoder().decode(CancellationFee.self, from: JSONEncoder().encode(fee))
        #expect(roundTrip == fee)
    }

    @Test(arguments: [#"{}"#, #"{"each":1,"order":2}"#])
    func cancellationFeeNeedsExactlyOneKind(json: String) throws {
        do {
            _ = try JSONDecoder().decode(CancellationFee.self, from: Data(json.utf8))
            Issue.record("decoded \(json)")
        } catch let error as RefundError {
            #expect(error.code == .invalidField)
            #expect(error.message.contains("per_line"))
        }
    }

    @Test func sectionFourRefundObject() throws {
        var state = Fixtures.place(Fixtures.contractOrder())
        var options = Fixtures.options(fee: .order(500))
        options.reason = "event_cancelled"
        try state.refund(options)
        state.resolvePending(refund: 1, .succeeded(reference: nil))
        let data = try JSONEncoder().encode(state.refunds[0])
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["id"] as? String == "rf_1_ord_1")
        #expect(object["order_id"] as? String == "ord_1")
        #expect(object["status"] as? String == "succeeded")
        #expect(object["method"] as? String == "original")
        #expect(object["amount"] as? Int == 4135)
        #expect(object["fee_retained"] as? Int == 500)
        #expect(object["tax"] as? Int == 669)
        #expect(object["reason"] as? String == "event_cancelled")
        #expect(object["note"] is NSNull)
        #expect(object["created_at"] as? String == "2026-11-22T10:00:00Z")
        let lines = try #require(object["lines"] as? [[String: Any]])
        #expect(lines.count == 1)
        #expect(lines[0]["line"] as? String == "l1")
        #expect(lines[0]["amount"] as? Int == 4135)
        #expect(lines[0]["fee_retained"] as? Int == 500)
        #expect(lines[0]["tax"] as? Int == 669)
        let transactions = try #require(object["transactions"] as? [[String: Any]])
        #expect(transactions.map { $0["tender"] as? String } == ["t1", "t2"])
        #expect(transactions.map { $0["method"] as? String } == ["card", "wallet"])
        #expect(transactions.map { $0["amount"] as? Int } == [2540, 1595])
        #expect(transactions.map { $0["status"] as? String } == ["succeeded", "succeeded"])
        #expect(transactions.map { $0["attempts"] as? Int } == [1, 1])
        // And it decodes back to the same refund.
        #expect(try JSONDecoder().decode(Refund.self, from: data) == state.refunds[0])
    }
}
