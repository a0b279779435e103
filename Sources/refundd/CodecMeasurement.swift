import NIOCore
import RefundCore
import RefundEngine
import RefundServer

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Measures the JSON cost per request on this machine (`refundd --measure-codec`), side by side: Foundation's
/// `JSONDecoder`/`JSONEncoder` (what the server first used) and the hand-written byte codec in `JSON/` (what it
/// uses now), on the same request lines and results, as the server runs them. A measurement of the daemon,
/// not part of the server library: it reaches the server's request and response types through `package` access.
enum CodecMeasurement {
    struct Result: Sendable {
        var name: String
        var bytes: Int
        var microseconds: Double
    }

    /// A sample request line per op that `run` measures, and the model values it renders.
    static func sampleOrder() -> Order {
        Order(
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
    }

    static func sampleRefund() -> Refund {
        Refund(
            id: "rf_1_ord_1", orderID: "ord_1", method: .original, amount: 4135, feeRetained: 500, tax: 669,
            bookingFee: 0, reason: "event_cancelled", note: nil, createdAt: Timestamp(milliseconds: 1_795_000_000_000),
            createdBy: "ops_1", restock: true, lines: [RefundLine(line: "l1", amount: 4135, feeRetained: 500, tax: 669)],
            transactions: [
                RefundTransaction(tender: "t1", method: .card, amount: 2540, status: .succeeded, attempts: 1),
                RefundTransaction(tender: "t2", method: .wallet, amount: 1595, status: .succeeded, attempts: 1),
            ])
    }

    static func sampleLines() -> [(op: String, line: String)] {
        let orderJSON = (try? JSONBytesEncoder().encode(sampleOrder())).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return [
            ("refund.create", #"{"id":17,"op":"refund.create","order_id":"ord_1","method":"original","fee":{"order":500},"reason":"event_cancelled"}"#),
            ("order.get", #"{"id":18,"op":"order.get","order_id":"ord_1"}"#),
            ("order.put", #"{"id":19,"op":"order.put","order":\#(orderJSON)}"#),
        ]
    }

    static func run(iterations: Int = 20_000) -> [Result] {
        var results: [Result] = []
        let foundation = JSONDecoder()
        let bytesDecoder = JSONValueDecoder()
        for (op, line) in sampleLines() {
            let buffer = ByteBuffer(string: line)
            // As the server did: validate UTF-8, copy into Data, JSONDecoder.
            let before = time(iterations) {
                _ = buffer.withUnsafeReadableBytes { bytes -> Bool in
                    guard String(validating: bytes, as: UTF8.self) != nil else { return false }
                    return (try? foundation.decode(Request.self, from: Data(bytes))) != nil
                }
            }
            // As the server does now: parse the buffer's bytes in place.
            let after = time(iterations) {
                _ = buffer.withUnsafeReadableBytes { bytes -> Bool in
                    (try? bytesDecoder.decode(Request.self, from: bytes)) != nil
                }
            }
            results.append(Result(name: "Foundation decode \(op)", bytes: line.utf8.count, microseconds: before))
            results.append(Result(name: "byte codec decode \(op)", bytes: line.utf8.count, microseconds: after))
        }
        let dispatcher = Dispatcher(engine: Engine(), counters: ServerCounters())
        let responses: [(String, any Encodable & Sendable)] = [("refund", sampleRefund()), ("order", sampleOrder())]
        for (index, (name, result)) in responses.enumerated() {
            let id = WireID.int(Int64(17 + index))
            var size = 0
            let before = time(iterations) { size = foundationSuccess(id: id, result).readableBytes }
            results.append(Result(name: "Foundation encode \(name) response", bytes: size, microseconds: before))
            let after = time(iterations) { size = dispatcher.success(id: id, result).readableBytes }
            results.append(Result(name: "byte codec encode \(name) response", bytes: size, microseconds: after))
        }
        return results
    }

    /// The response rendering the server had with Foundation's `JSONEncoder` (for comparison).
    static func foundationSuccess(id: WireID, _ result: any Encodable) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let idBytes = try? encoder.encode(id), let body = try? encoder.encode(result) else { return ByteBuffer() }
        var buffer = ByteBufferAllocator().buffer(capacity: idBytes.count + body.count + 32)
        buffer.writeStaticString("{\"id\":")
        buffer.writeBytes(idBytes)
        buffer.writeStaticString(",\"ok\":true,\"result\":")
        buffer.writeBytes(body)
        buffer.writeStaticString("}\n")
        return buffer
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
