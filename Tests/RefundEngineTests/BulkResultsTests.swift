import RefundCore
import RefundStorage
import Testing

@testable import RefundEngine

// `bulk.results` (Engine.bulkResultsPage): every order a job refunded or skipped, with its outcome, refund, amounts,
// gateway references and reason; paged with small pages and filtered by outcome; the same after a restart.
@Suite struct BulkResultsTests {
    @Test func everyOrderOfAJobWithWhatBecameOfIt() async throws {
        let directory = TemporaryDirectory()
        let gateway = SimulatedGateway()
        func open() async throws -> Engine {
            try await Engine.open(
                configuration: EngineConfiguration(partitions: 3),
                durability: DurabilityOptions(directory: directory.path, fsync: .always), gateway: gateway,
                clock: ManualClock(Fixtures.t0))
        }
        var engine = try await open()
        var expected: [String: BulkOrderResult.Outcome] = [:]
        for n in 0..<40 {
            var order = Fixtures.tickets(id: "ord_\(n)", event: n % 10 == 9 ? "evt_other" : "evt_b", count: 1 + n % 3)
            if n % 10 == 9 { continue }  // another event: never in the job
            if n % 7 == 3 {
                order.frozen = true
                expected[order.id] = .skipped
            }
            try await engine.putOrder(order)
        }
        // The first answers the gateway gives: failures, acceptances for later, then successes (whichever orders
        // the job happens to send first get them; each result is checked against its own order below).
        gateway.script([
            .failed(code: "card_declined", retryable: false), .pending(reference: "re_p1"),
            .failed(code: "expired_card", retryable: false), .pending(reference: "re_p2"), .succeeded(reference: "re_s1"),
        ])
        let staff = Caller.staff("ops_1")
        let job = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_b"], options: RefundOptions(method: .original, fee: .order(100), reason: "event_cancelled")),
            caller: staff)
        #expect(job.total == expected.count + job.succeeded + job.pending + job.failed)
        func all(_ engine: Engine, _ outcome: BulkOrderResult.Outcome? = nil, page: Int) async throws -> [BulkOrderResult] {
            var out: [BulkOrderResult] = []
            var cursor: String?
            repeat {
                let p = try await engine.bulkResultsPage(jobID: job.jobID, outcome: outcome, limit: page, after: cursor)
                #expect(p.items.count <= page)
                out += p.items
                cursor = p.next
            } while cursor != nil
            return out
        }
        for attempt in 0..<2 {
            let results = try await all(engine, page: 4)
            #expect(Set(results.map(\.orderID)).count == results.count, "an order twice")
            #expect(results.count == job.total)
            for result in results {
                let view = try await engine.order(result.orderID)
                if expected[result.orderID] == .skipped {
                    #expect(result.outcome == .skipped && result.reason == "order_frozen" && result.refundID == nil)
                    continue
                }
                let refund = try #require(view.refunds.last)
                #expect(result.refundID == refund.id && result.amount == refund.amount && result.feeRetained == 100)
                #expect(result.outcome.rawValue == refund.status.rawValue && result.currency == "GBP")
                #expect(result.gatewayRefs == refund.transactions.compactMap(\.gatewayRef))
                if result.outcome == .failed {
                    #expect(["card_declined", "expired_card"].contains(result.reason ?? ""), "\(result)")
                }
            }
            let skipped = try await all(engine, .skipped, page: 2)
            #expect(skipped.map(\.orderID).sorted() == expected.keys.sorted())
            #expect(try await all(engine, .succeeded, page: 1000).count == job.succeeded)
            #expect(try await all(engine, .failed, page: 1).count == 2)
            #expect(try await all(engine, .pending, page: 1).map(\.gatewayRefs).flatMap { $0 }.sorted() == ["re_p1", "re_p2"])
            if attempt == 0 {
                try await engine.close()
                engine = try await open()  // the job, its refunds and its skipped orders come back from disk
            }
        }
        await #expect(throws: RefundError.self) { try await engine.bulkResultsPage(jobID: "job_none") }
        await #expect(throws: RefundError.self) { try await engine.bulkResultsPage(jobID: job.jobID, after: "i1.x") }
        try await engine.close()
    }
}
