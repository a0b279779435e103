import NIOCore
import RefundCore
import RefundEngine

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Measures the JSON cost per request on this machine (`refundd --measure-codec`): Foundation's `JSONDecoder`
/// on request lines and `JSONEncoder` on results, as the server uses them.
public enum CodecMeasurement {
    public struct Result: Sendable {
        public var name: String
        public var bytes: Int
        public var microseconds: Double
    }

    public static func run(iterations: Int = 20_000) -> [Result] {
        let order = Order(
            id: "ord_1", event: "evt_1", eventStartsAt: Timestamp(iso8601: "2026-12-01T19:00:00Z"), customer: "cus_9",
            email: "a@example.com", currency: .gbp, bookingFee: 150,
            lines: [
                OrderLine(
                    id: "l1", ticketType: "tt_ga", price: 5000, discount: 500, tax: 750, processingFee: 135,
                    platformFee: 99)
            ],
            tenders: [
                Tender(id: "t1", method: .card, amount: 3000, gatewayRef: "pi_1"),
                Tender(id: "t2", method: .wallet, amount: 1884),
            ])
        let encoder = JSONEncoder()
        let orderJSON = (try? encoder.encode(order)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let lines = [
            ("decode refund.create", #"{"id":17,"op":"refund.create","order_id":"ord_1","method":"original","fee":{"order":500},"reason":"event_cancelled"}"#),
            ("decode order.get", #"{"id":18,"op":"order.get","order_id":"ord_1"}"#),
            ("decode order.put", #"{"id":19,"op":"order.put","order":\#(orderJSON)}"#),
        ]
        var results: [Result] = []
        let decoder = JSONDecoder()
        for (name, line) in lines {
            let buffer = ByteBuffer(string: line)
            let elapsed = time(iterations) {
                _ = buffer.withUnsafeReadableBytes { bytes -> Bool in
                    guard String(validating: bytes, as: UTF8.self) != nil else { return false }
                    return (try? decoder.decode(Request.self, from: Data(bytes))) != nil
                }
            }
            results.append(Result(name: name, bytes: line.utf8.count, microseconds: elapsed))
        }
        let refund = Refund(
            id: "rf_1_ord_1", orderID: "ord_1", method: .original, amount: 4135, feeRetained: 500, tax: 669,
            bookingFee: 0, reason: "event_cancelled", note: nil, createdAt: Timestamp(milliseconds: 1_795_000_000_000),
            createdBy: "ops_1", restock: true, lines: [RefundLine(line: "l1", amount: 4135, feeRetained: 500, tax: 669)],
            transactions: [
                RefundTransaction(tender: "t1", method: .card, amount: 2540, status: .succeeded, attempts: 1),
                RefundTransaction(tender: "t2", method: .wallet, amount: 1595, status: .succeeded, attempts: 1),
            ])
        let dispatcher = Dispatcher(engine: Engine(), counters: ServerCounters())
        var size = 0
        let encodeRefund = time(iterations) { size = dispatcher.success(id: .int(17), refund).readableBytes }
        results.append(Result(name: "encode refund response", bytes: size, microseconds: encodeRefund))
        let encodeOrder = time(iterations) { size = dispatcher.success(id: .int(18), order).readableBytes }
        results.append(Result(name: "encode order response", bytes: size, microseconds: encodeOrder))
        return results
    }

    private static func time(_ iterations: Int, _ body: () -> Void) -> Double {
        for _ in 0..<min(1000, iterations) { body() }
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { body() }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds * 1e6 / Double(iterations)
    }
}
