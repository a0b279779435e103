import RefundCore
import RefundEngine
import Testing

// `Engine.execute(_:)` (what the server does with the requests of one read: one hop per partition) against the
// single-request path: the same random requests, split into random batches on one engine and sent one at a time
// to its twin, give the same answers and leave the same orders. A failure prints the seed.

/// A gateway whose answer depends only on the request (its idempotency key), not on the order requests arrive in
/// or how they are grouped into calls: both twins see the same outcome for the same attempt.
struct KeyedGateway: PaymentGateway {
    func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        requests.map { request in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in request.idempotencyKey.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return switch hash % 5 {
            case 0: .failed(code: "declined", retryable: false)
            case 1: .pending(reference: "re_\(request.refundID)")
            case 2: .unknown(reason: "timeout")
            default: .succeeded(reference: "re_\(request.refundID)")
            }
        }
    }
}

@Suite struct BatchExecutionTests {
    @Test(arguments: [UInt64(11), 12, 13, 14, 15, 16])
    func batchesAnswerAsSingleRequests(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let start = Timestamp(iso8601: "2026-11-22T10:00:00Z")!
        let batched = Engine(
            configuration: EngineConfiguration(partitions: 3), gateway: KeyedGateway(), clock: ManualClock(start))
        let single = Engine(
            configuration: EngineConfiguration(partitions: 3), gateway: KeyedGateway(), clock: ManualClock(start))
        let staff = Caller.staff("staff_1")
        let orderIDs = (0..<10).map { "ord_\($0)" }
        func order(_ id: String, price: Int64) -> Order {
            Fixtures.tickets(id: id, count: 3, price: price)
        }
        var requests: [BatchRequest] = []
        for _ in 0..<300 {
            let id = orderIDs.randomElement(using: &random) ?? "ord_0"
            switch Int.random(in: 0..<10, using: &random) {
            case 0, 1:
                // A put: new, identical again, or changed (refused once the order has refunds).
                requests.append(.putOrder(order(id, price: [4000, 5000].randomElement(using: &random) ?? 4000), caller: "checkout"))
            case 2, 3:
                requests.append(.order(id))
            case 4:
                requests.append(.refund("rf_\(Int.random(in: 1...3, using: &random))_\(id)"))
            case 5:
                requests.append(.refund("not a refund id"))
            default:
                var options = Fixtures.options(
                    [.original, .original, .offline, .none].randomElement(using: &random) ?? .original,
                    lines: Bool.random(using: &random) ? ["l\(Int.random(in: 1...4, using: &random))"] : nil)
                if Int.random(in: 0..<4, using: &random) == 0 { options.idempotencyKey = "k\(Int.random(in: 0..<3, using: &random))" }
                requests.append(.createRefund(orderID: id, options: options, caller: staff))
            }
        }
        var batchedAnswers: [BatchAnswer] = []
        var next = 0
        while next < requests.count {
            let size = Int.random(in: 1...24, using: &random)
            let batch = Array(requests[next..<min(requests.count, next + size)])
            next += batch.count
            batchedAnswers += await batched.execute(batch)
        }
        var singleAnswers: [BatchAnswer] = []
        for request in requests { singleAnswers += await single.execute([request]) }
        #expect(batchedAnswers.count == requests.count)
        for (i, (a, b)) in zip(batchedAnswers, singleAnswers).enumerated() {
            #expect(describe(a) == describe(b), "request \(i) (\(requests[i])), seed \(seed)")
        }
        for id in orderIDs {
            let a = try? await batched.orderState(id)
            let b = try? await single.orderState(id)
            #expect(a == b, "order \(id), seed \(seed)")
        }
        // And the single path used here is the engine's own: a request alone answers as the public methods do.
        let view = try await single.order(orderIDs[0])
        if case .order(let alone) = await single.execute([.order(orderIDs[0])]).first { #expect(alone == view) }
    }

    /// Answers compared by value (a refusal by its code and message).
    func describe(_ answer: BatchAnswer) -> String {
        switch answer {
        case .refund(let refund): "refund \(refund)"
        case .order(let view): "order \(view)"
        case .failure(let error): "error \(error.code.rawValue): \(error.message)"
        }
    }
}
