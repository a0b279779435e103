import Testing

// The README's embedding example, compiled and run as a test. Keep the two in step.
// --- README example begins ---
import RefundCore
import RefundEngine

func embeddingExample() async throws -> Refund {
    let engine = Engine(gateway: SimulatedGateway())  // your PaymentGateway in production
    try await engine.putOrder(
        Order(
            id: "ord_1", event: "evt_1", customer: "cus_9", email: "a@example.com", currency: .gbp,
            bookingFee: 150,
            lines: [OrderLine(id: "l1", ticketType: "tt_ga", price: 5000, discount: 500, tax: 750,
                              processingFee: 135, platformFee: 99)],
            tenders: [Tender(id: "t1", method: .card, amount: 3000, gatewayRef: "pi_1"),
                      Tender(id: "t2", method: .wallet, amount: 1884)]))
    let options = RefundOptions(method: .original, fee: .order(500), reason: "event_cancelled")
    let preview = try await engine.preview(orderID: "ord_1", options, caller: .staff("ops_1"))
    print("would refund \(preview.amount), keep \(preview.feeRetained)")
    let refund = try await engine.createRefund(orderID: "ord_1", options, caller: .staff("ops_1"))
    print(refund.id, refund.status, refund.amount, refund.transactions.map(\.amount))  // rf_1_ord_1 succeeded 4135 [2540, 1595]
    return refund
}
// --- README example ends ---

@Test func readmeEmbeddingExampleRuns() async throws {
    let refund = try await embeddingExample()
    #expect(refund.amount == 4135 && refund.transactions.map(\.amount) == [2540, 1595])
}
