import Foundation
import RefundCore
import RefundEngine
import Synchronization
import Testing

// The code of the DocC articles in Sources/RefundEngine/RefundEngine.docc, compiled and run here. Keep the two in
// step: each block between "article" markers is quoted in an article.

// --- article EmbeddingInACheckoutService: provider ---
/// Your payment service provider's refund API, as your service already calls it (a stand-in here).
protocol RefundProvider: Sendable {
    /// Refunds `amount` of the payment `payment`. `metadata` comes back with the provider's webhook.
    func refund(payment: String, amount: Int64, currency: String, idempotencyKey: String, metadata: [String: String])
        async throws -> ProviderAnswer
}

enum ProviderAnswer: Sendable {
    case refunded(id: String)
    case accepted(id: String)  // the provider confirms later, by webhook
    case declined(code: String, temporary: Bool)
}
// --- end ---

// --- article EmbeddingInACheckoutService: gateway ---
/// The engine's payment gateway, over the provider.
struct CheckoutGateway: PaymentGateway {
    let provider: any RefundProvider

    func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        // One outcome per request, in the order of the requests.
        await withTaskGroup(of: (Int, GatewayOutcome).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, await send(request)) }
            }
            var outcomes = [GatewayOutcome](repeating: .unknown(reason: "no answer"), count: requests.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
    }

    private func send(_ request: GatewayRequest) async -> GatewayOutcome {
        guard let payment = request.paymentReference else {
            return .failed(code: "no_payment_reference", retryable: false)
        }
        do {
            let answer = try await provider.refund(
                payment: payment, amount: request.amount, currency: request.currency.code,
                idempotencyKey: request.idempotencyKey,  // "<refund id>:<tender id>:<attempt>"
                metadata: ["refund_id": request.refundID, "tender_id": request.tenderID, "attempt": "\(request.attempt)"])
            switch answer {
            case .refunded(let id): return .succeeded(reference: id)
            case .accepted(let id): return .pending(reference: id)
            case .declined(let code, let temporary): return .failed(code: code, retryable: temporary)
            }
        } catch {
            // A timeout or a reset connection says nothing about whether the money moved: the engine sends the
            // same attempt again later, under the same idempotency key.
            return .unknown(reason: "\(error)")
        }
    }
}
// --- end ---

// --- article EmbeddingInACheckoutService: webhook ---
/// The provider's webhook for a refund it accepted earlier: the metadata names the attempt it answers.
func refundWebhook(engine: Engine, metadata: [String: String], succeeded: Bool, providerID: String?, failure: String?)
    async throws(RefundError)
{
    guard let refundID = metadata["refund_id"], let tenderID = metadata["tender_id"],
        let attempt = metadata["attempt"].flatMap({ Int($0) })
    else { throw RefundError(.missingField, "the webhook's metadata names no refund attempt") }
    try await engine.settle(
        refundID: refundID, tender: tenderID, attempt: attempt, succeeded: succeeded, reference: providerID,
        failureCode: failure)
}
// --- end ---

/// Where the bulk article's event loop sends buyers' emails (nowhere, here).
func sendConfirmation(to email: String, refundID: String?, amount: Int64?, text: String?) {}

/// A provider for the tests: answers from a script, remembers every key it saw.
final class ScriptedProvider: RefundProvider {
    struct Failure: Error {}
    enum Step { case refunded, accepted, declined(temporary: Bool), timeout }
    private let state = Mutex<(steps: [Step], keys: [String], metadata: [[String: String]])>(([], [], []))

    init(_ steps: [Step]) { state.withLock { $0.steps = steps } }

    var keys: [String] { state.withLock { $0.keys } }
    var metadata: [[String: String]] { state.withLock { $0.metadata } }

    func refund(payment: String, amount: Int64, currency: String, idempotencyKey: String, metadata: [String: String])
        async throws -> ProviderAnswer
    {
        let step = state.withLock { s -> Step in
            s.keys.append(idempotencyKey)
            s.metadata.append(metadata)
            return s.steps.isEmpty ? .refunded : s.steps.removeFirst()
        }
        switch step {
        case .refunded: return .refunded(id: "re_\(idempotencyKey)")
        case .accepted: return .accepted(id: "re_\(idempotencyKey)")
        case .declined(let temporary): return .declined(code: "card_declined", temporary: temporary)
        case .timeout: throw Failure()
        }
    }
}

@Suite("the DocC articles' code")
struct DocCArticleExampleTests {
    @Test("a gateway over a provider: accepted then settled by webhook; a timeout goes again under the same key")
    func embedding() async throws {
        let directory = NSTemporaryDirectory() + "docc-article-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let provider = ScriptedProvider([.accepted, .timeout, .refunded])
        let clock = ManualClock(Fixtures.t0)
        // --- article EmbeddingInACheckoutService: open ---
        let engine = try await Engine.open(
            configuration: EngineConfiguration(partitions: 4, gatewayBatchSize: 64),
            durability: DurabilityOptions(directory: directory, fsync: .always),
            gateway: CheckoutGateway(provider: provider), clock: clock)
        // --- end ---

        try await engine.putOrder(Fixtures.contractOrder(id: "ord_1"))
        // --- article EmbeddingInACheckoutService: create ---
        let options = RefundOptions(
            method: .original, fee: .order(500), reason: "event_cancelled", idempotencyKey: "checkout-7781")
        let refund = try await engine.createRefund(orderID: "ord_1", options, caller: .staff("ops_1"))
        // The same request again (a client retry) answers the first refund; other options are idempotency_conflict.
        let again = try await engine.createRefund(orderID: "ord_1", options, caller: .staff("ops_1"))
        // --- end ---
        #expect(again == refund)
        #expect(refund.status == .pending)  // the card share was accepted, to be confirmed by webhook
        #expect(provider.keys == ["\(refund.id):t1:1"])

        try await refundWebhook(
            engine: engine, metadata: provider.metadata[0], succeeded: true, providerID: "re_1", failure: nil)
        #expect(try await engine.refund(refund.id).status == .succeeded)

        // A timeout: unknown, sent again after the backoff under the same key.
        try await engine.putOrder(Fixtures.tickets(id: "ord_2", count: 1))
        let second = try await engine.createRefund(
            orderID: "ord_2", RefundOptions(method: .original, reason: "event_cancelled"), caller: .staff("ops_1"))
        #expect(second.status == .pending)
        clock.advance(milliseconds: 60_000)
        #expect(await engine.runDueAttempts() == 1)
        #expect(provider.keys.suffix(2) == ["\(second.id):t1:1", "\(second.id):t1:1"])
        #expect(try await engine.refund(second.id).status == .succeeded)
        try await engine.close()
    }

    @Test("a bulk cancellation from code: dry run, start, follow, events")
    func bulk() async throws {
        let engine = Fixtures.engine()
        for i in 1...20 { try await engine.putOrder(Fixtures.tickets(id: "ord_\(i)", event: "evt_9", count: 2)) }
        let caller = Caller.staff("ops_1")
        // --- article RunningABulkCancellation: dry run ---
        let options = RefundOptions(
            method: .original, fee: .order(200), reason: "event_cancelled",
            emailText: "The concert on 1 December is cancelled. Your refund is on its way.")
        let preview = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_9"], options: options, dryRun: true), caller: caller)
        print("would refund \(preview.succeeded) orders, \(preview.refunded) \(preview.currency ?? "")",
              "and skip \(preview.skipped): \(preview.skippedOrders.map(\.reason))")
        // --- end ---
        #expect(preview.succeeded == 20 && preview.dryRun)

        // --- article RunningABulkCancellation: run ---
        let jobID = try await engine.startBulkCancellation(
            BulkCancelRequest(events: ["evt_9"], options: options), caller: caller)
        var status = try engine.bulkStatus(jobID: jobID)
        while status.state == .running {
            try await Task.sleep(for: .milliseconds(200))
            status = try engine.bulkStatus(jobID: jobID)
            print("\(status.processed)/\(status.total) processed, \(status.pending) at the gateway")
        }
        // --- end ---
        #expect(status.state == .completed)
        #expect(status.succeeded == 20)
        #expect(status.refunded == 20 * (10_000 - 200))

        // --- article RunningABulkCancellation: events ---
        var cursor: UInt64 = 0  // the last sequence handled, kept by your service
        for event in await engine.events(after: cursor) {
            switch event.kind {
            case .refundAccepted, .orderCancelled, .refundCompleted, .refundFailed:
                if event.notify == true, let email = event.notifyEmail {
                    sendConfirmation(to: email, refundID: event.refundID, amount: event.amount, text: event.emailText)
                }
            case .bulkSummary, .bulkUpdate:
                print(event.jobID ?? "", event.text ?? "")
            case .confirmationResent:
                break
            }
            cursor = event.sequence
        }
        try await engine.acknowledgeEvents(upTo: cursor)
        // --- end ---
        #expect(cursor > 0)
    }
}
