import RefundCore
import RefundEngine
import Testing

@testable import RefundServer

// The hand-written answers (HotResponseEncoding) against the Encodable route (JSONBytesEncoder): byte for byte the
// same, for refunds and order views in every state a random history reaches (every gateway outcome, late answers,
// recoveries, resends, requests, disputes, strings that need escaping).

@Suite struct HotResponseEncodingTests {
    static let awkward = ["plain", "quote \" and \\ backslash", "tab\tnew\nline\u{1}", "émoji 🎟️ ünïcode", "", "/slash/"]

    /// A history of random refunds on random orders; every refund and order view it leaves is checked.
    @Test func sameBytesAsEncodable() async throws {
        var seen: Set<String> = []
        for seed in UInt64(1)...8 { seen.formUnion(try await history(seed: seed)) }
        // The rare parts these histories reach (so the comparison covers them, not only plain refunds).
        #expect(seen == ["recoveries", "late answers", "resends", "failures", "retries", "attention"], "reached: \(seen.sorted())")
    }

    /// One history; returns which rare parts of a refund it reached.
    func history(seed: UInt64) async throws -> Set<String> {
        var random = SplitMix64(seed: seed)
        let gateway = SimulatedGateway()
        let clock = ManualClock(Timestamp(iso8601: "2026-11-22T10:00:00Z")!)
        let engine = Engine(configuration: EngineConfiguration(partitions: 2), gateway: gateway, clock: clock)
        let staff = Caller.staff("staff_1")
        var orderIDs: [String] = []
        for n in 0..<12 {
            let lineCount = Int.random(in: 1...4, using: &random)
            let lines = (1...lineCount).map { i in
                OrderLine(
                    id: "l\(i)", kind: i == 4 ? .product : .ticket, ticketType: Bool.random(using: &random) ? "tt_ga" : nil,
                    price: Int64.random(in: 100...9000, using: &random), discount: Int64.random(in: 0...50, using: &random),
                    tax: Int64.random(in: 0...40, using: &random), processingFee: Int64.random(in: 0...50, using: &random),
                    platformFee: Int64.random(in: 0...20, using: &random), transferred: i == 3 && Bool.random(using: &random),
                    holder: i == 2 && Bool.random(using: &random) ? "att_\(n)" : nil)
            }
            let bookingFee = Bool.random(using: &random) ? Int64(150) : 0
            let total = lines.reduce(bookingFee) { $0 + $1.paidValue + $1.processingFee + $1.platformFee }
            let wallet = Bool.random(using: &random) ? total / 3 : 0
            var tenders = [Tender(id: "t1", method: .card, amount: total - wallet, gatewayRef: Bool.random(using: &random) ? "pi_\(n)" : nil)]
            if wallet > 0 { tenders.append(Tender(id: "t2", method: .wallet, amount: wallet)) }
            let id = "ord_\(seed)_\(n)"
            try await engine.putOrder(
                Order(
                    id: id, event: "evt_\(n % 3)",
                    eventStartsAt: Bool.random(using: &random) ? Timestamp(iso8601: "2026-12-01T19:00:00.250Z") : nil,
                    customer: "cus_\(n % 3)", email: Bool.random(using: &random) ? "a@example.com" : nil,
                    currency: n % 4 == 0 ? .jpy : .gbp, channel: Channel.allCases.randomElement(using: &random) ?? .online,
                    parent: n > 0 && n % 5 == 0 ? "ord_\(seed)_0" : nil, bookingFee: bookingFee, lines: lines,
                    tenders: tenders))
            orderIDs.append(id)
        }
        let outcomes: [GatewayOutcome] = [
            .succeeded(reference: "re_1"), .succeeded(reference: nil), .pending(reference: "re_p"),
            .failed(code: "card \"declined\"", retryable: false), .failed(code: "rate", retryable: true),
            .unknown(reason: "timeout"),
        ]
        for _ in 0..<80 {
            let orderID = orderIDs.randomElement(using: &random) ?? orderIDs[0]
            gateway.script([outcomes.randomElement(using: &random) ?? .succeeded(reference: nil)])
            var options = RefundOptions(
                lines: Bool.random(using: &random) ? ["l1"] : nil,
                method: [.original, .original, .balance, .offline, .none].randomElement(using: &random) ?? .original,
                reason: Bool.random(using: &random) ? "customer_request" : Self.awkward.randomElement(using: &random) ?? "")
            options.note = Bool.random(using: &random) ? Self.awkward.randomElement(using: &random) : nil
            options.notify = Bool.random(using: &random)
            options.emailText = Bool.random(using: &random) ? "Dear \"buyer\"\n" : nil
            if Bool.random(using: &random) { options.fee = .order(Int64.random(in: 0...300, using: &random)) }
            guard let refund = try? await engine.createRefund(orderID: orderID, options, caller: staff) else { continue }
            let tender = refund.transactions.first { $0.tender != nil }?.tender
            switch (refund.status, Int.random(in: 0..<4, using: &random)) {
            case (.failed, 0...2):
                _ = try? await engine.recover(
                    refundID: refund.id, action: RecoveryAction.allCases.randomElement(using: &random) ?? .other,
                    note: "called \"them\"", caller: staff)
            case (_, 0):
                _ = try? await engine.resendConfirmation(refundID: refund.id, caller: staff)
            case (_, 1), (.pending, _):
                // A settlement: for a pending attempt, or a late (or duplicate) answer for a settled one.
                if let tender {
                    _ = try? await engine.settle(
                        refundID: refund.id, tender: tender, attempt: 1, succeeded: Bool.random(using: &random),
                        reference: "late", failureCode: "x")
                }
            case (_, 2):
                clock.advance(milliseconds: 3_600_000)
                _ = try? await engine.retry(refundID: refund.id, caller: staff)
            default:
                break
            }
        }
        // Tickets moved between holders and back (holder, holder state and transfer history in the views).
        for _ in 0..<20 {
            let orderID = orderIDs.randomElement(using: &random) ?? orderIDs[0]
            let to: String? = [nil, "att_x", "att.y:z-1", "cus_0"].randomElement(using: &random) ?? nil
            _ = try? await engine.transferTicket(orderID: orderID, line: ["l1", "l2"].randomElement(using: &random) ?? "l1", to: to, caller: staff)
        }
        _ = try? await engine.requestRefund(orderID: orderIDs[1], lines: nil, reason: "ill", caller: .customer("cus_1"))
        _ = try? await engine.openDispute(orderID: orderIDs[2], reason: "fraud", caller: staff)
        let encoder = JSONBytesEncoder()
        var refunds = 0
        var seen: Set<String> = []
        for id in orderIDs {
            let view = try await engine.order(id)
            let handView = String(decoding: try hot(view, encoder), as: UTF8.self)
            let encodableView = String(decoding: try encoder.encode(view), as: UTF8.self)
            #expect(handView == encodableView, "order \(id), seed \(seed)")
            // The compact view (order.get with include), with every combination of parts.
            for mask in 0..<8 {
                let include = Set(OrderViewPart.allCases.enumerated().filter { mask & (1 << $0.offset) != 0 }.map(\.element))
                let compact = CompactOrderView(view: view, include: include)
                var handBytes: [UInt8] = []
                try HotResponseEncoding.append(compact, to: &handBytes, encoder: encoder)
                let encodableCompact = String(decoding: try encoder.encode(compact), as: UTF8.self)
                #expect(String(decoding: handBytes, as: UTF8.self) == encodableCompact, "order \(id) \(include), seed \(seed)")
            }
            for refund in view.refunds {
                refunds += 1
                if !refund.recoveries.isEmpty { seen.insert("recoveries") }
                if !refund.lateAnswers.isEmpty { seen.insert("late answers") }
                if !refund.resentAt.isEmpty { seen.insert("resends") }
                if refund.transactions.contains(where: { !$0.failures.isEmpty }) { seen.insert("failures") }
                if refund.transactions.contains(where: { $0.nextAttemptAt != nil }) { seen.insert("retries") }
                if refund.attentionReason != nil { seen.insert("attention") }
                let hand = String(decoding: try hot(refund, encoder), as: UTF8.self)
                let encodable = String(decoding: try encoder.encode(refund), as: UTF8.self)
                #expect(hand == encodable, "refund \(refund.id), seed \(seed)")
            }
        }
        #expect(refunds > 0, "seed \(seed)")
        return seen
    }

    func hot(_ refund: Refund, _ encoder: JSONBytesEncoder) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try HotResponseEncoding.append(refund, to: &bytes, encoder: encoder)
        return bytes
    }

    func hot(_ view: OrderView, _ encoder: JSONBytesEncoder) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try HotResponseEncoding.append(view, to: &bytes, encoder: encoder)
        return bytes
    }
}
