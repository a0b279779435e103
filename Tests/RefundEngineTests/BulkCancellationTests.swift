import RefundCore
import RefundEngine
import Synchronization
import Testing

@Suite struct BulkCancellationTests {
    static let settings = RefundOptions(method: .original, fee: .order(200), reason: "event_cancelled", emailText: "Show cancelled")

    @Test func cancelsAnEventAndSummarises() async throws {
        let engine = Fixtures.engine(partitions: 3)
        let event = SyntheticEvent(event: "evt_big", orders: 2_000)
        #expect(await engine.putOrders(event.allOrders()).isEmpty)
        try await engine.putOrder(Fixtures.tickets(id: "ord_other", event: "evt_other", count: 1))

        let dry = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_big"], options: Self.settings, dryRun: true), caller: Fixtures.staff)
        #expect(dry.total == 2_000 && dry.succeeded == 2_000 && dry.dryRun)
        #expect(await engine.statistics().refunds == 0)  // a dry run changes nothing

        let status = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_big"], options: Self.settings), caller: Fixtures.staff)
        #expect(status.state == .completed)
        #expect(status.total == 2_000 && status.processed == 2_000 && status.succeeded == 2_000)
        #expect(status.refunded == dry.refunded && status.feeRetained == dry.feeRetained)
        #expect(status.feeRetained == 2_000 * 200)
        #expect(try engine.bulkStatus(jobID: status.jobID) == status)

        // Every order refunded once, money exact per order.
        var refunded: Int64 = 0
        for i in stride(from: 0, to: 2_000, by: 97) {
            let view = try await engine.order("ord_\(i)")
            #expect(view.status == .refunded && view.refunds.count == 1)
            #expect(view.totals.gross == view.totals.refunded + view.totals.outstanding + view.totals.retained + view.totals.net)
        }
        for refund in try await engine.refunds(event: "evt_big", limit: 10_000) { refunded += refund.amount }
        #expect(refunded == status.refunded)
        #expect(try await engine.order("ord_other").status == .completed)

        let events = await engine.events(after: 0, limit: 100_000)
        #expect(events.contains { $0.kind == .bulkSummary && $0.jobID == status.jobID })
        #expect(events.contains { $0.kind == .bulkUpdate && $0.jobID == status.jobID })
        // A second run skips everything: already refunded.
        let again = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_big"], options: Self.settings), caller: Fixtures.staff)
        #expect(again.skipped == 2_000 && again.succeeded == 0)
        #expect(again.skippedOrders.allSatisfy { $0.reason == "already_refunded" })
    }

    @Test func filtersSkipsAndPendingOrders() async throws {
        let engine = Fixtures.engine(partitions: 2, gateway: SimulatedGateway(.init(neverConfirm: true)))
        try await engine.putOrder(Fixtures.tickets(id: "ord_1", event: "evt_f", count: 1))
        try await engine.putOrder(Fixtures.tickets(id: "ord_2", event: "evt_f", count: 1))
        var frozen = Fixtures.tickets(id: "ord_3", event: "evt_f", count: 1)
        frozen.frozen = true
        try await engine.putOrder(frozen)
        var boxOffice = Fixtures.tickets(id: "ord_4", event: "evt_f", count: 1, customer: nil)
        boxOffice.channel = .boxOffice
        boxOffice.tenders = [Tender(id: "t1", method: .cash, amount: 5000)]
        try await engine.putOrder(boxOffice)
        // ord_1 has a refund pending at the gateway.
        try await engine.createRefund(orderID: "ord_1", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)

        let cashOnly = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_f"], paymentMethod: .cash, options: Self.settings, dryRun: true), caller: Fixtures.staff)
        #expect(cashOnly.total == 1)
        let online = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_f"], channel: .online, options: Self.settings, dryRun: true), caller: Fixtures.staff)
        #expect(online.total == 3)

        let status = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_f"], options: Self.settings), caller: Fixtures.staff)
        #expect(status.total == 4 && status.processed == 4)
        #expect(status.state == .running)  // ord_2's card refund waits for the gateway
        #expect(status.pending == 1 && status.succeeded == 1 && status.skipped == 2)
        let skipped = Dictionary(uniqueKeysWithValues: status.skippedOrders.map { ($0.orderID, $0.reason) })
        #expect(skipped == ["ord_1": "refund_in_progress", "ord_3": "order_frozen"])

        // The last pending refund settles: the job completes and a final update goes out.
        let pending = try await engine.refunds(orderID: "ord_2")[0]
        try await engine.settle(refundID: pending.id, tender: "t1", succeeded: true)
        let final = try engine.bulkStatus(jobID: status.jobID)
        #expect(final.state == .completed && final.pending == 0 && final.succeeded == 2)
        #expect(await engine.events(after: 0).contains { $0.kind == .bulkUpdate && $0.jobID == status.jobID })
    }

    @Test func amountsOfDifferentCurrenciesAreNeverAdded() async throws {
        let engine = Fixtures.engine(partitions: 2)
        try await engine.putOrder(Fixtures.tickets(id: "ord_gbp", event: "evt_uk", count: 2))  // 100.00 GBP
        var euro = Fixtures.tickets(id: "ord_eur", event: "evt_fr", count: 1, price: 7000)
        euro.currency = .eur
        try await engine.putOrder(euro)
        let both = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_uk", "evt_fr"], options: Self.settings), caller: Fixtures.staff)
        #expect(both.succeeded == 2)
        #expect(both.currency == nil && both.refunded == 0 && both.feeRetained == 0)
        #expect(both.byCurrency["GBP"] == BulkAmounts(refunded: 10_000 - 200, feeRetained: 200))
        #expect(both.byCurrency["EUR"] == BulkAmounts(refunded: 7_000 - 200, feeRetained: 200))

        try await engine.putOrder(Fixtures.tickets(id: "ord_gbp2", event: "evt_uk2", count: 1))
        let one = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_uk2"], options: Self.settings, dryRun: true), caller: Fixtures.staff)
        #expect(one.currency == "GBP" && one.refunded == 4_800 && one.feeRetained == 200)
    }

    @Test func parentsAfterTheirChildren() async throws {
        let engine = Fixtures.engine(partitions: 4)
        try await engine.putOrder(Fixtures.tickets(id: "ord_parent", event: "evt_p", count: 1))
        for i in 0..<5 { try await engine.putOrder(Fixtures.tickets(id: "ord_kid\(i)", event: "evt_p", count: 1, parent: "ord_parent")) }
        let status = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_p"], options: Self.settings), caller: Fixtures.staff)
        #expect(status.succeeded == 6 && status.skipped == 0)
        #expect(try await engine.order("ord_parent").status == .refunded)
    }

    @Test func badBulkRequestsAreRejected() async throws {
        let engine = Fixtures.engine()
        let cases: [(BulkCancelRequest, Caller, RefundError.Code)] = [
            (BulkCancelRequest(events: [], options: Self.settings), Fixtures.staff, .missingField),
            (BulkCancelRequest(events: ["bad event"], options: Self.settings), Fixtures.staff, .invalidHandle),
            (BulkCancelRequest(events: ["evt"], options: RefundOptions(method: .original, fee: .perLine(["l1": 1]), reason: "x")), Fixtures.staff, .invalidField),
            (BulkCancelRequest(events: ["evt"], options: Self.settings), Caller(id: "c", permissions: [.refund]), .permissionDenied),
            (BulkCancelRequest(events: ["evt"], options: RefundOptions(method: .original, reason: "Not A Code")), Fixtures.staff, .invalidField),
        ]
        for (request, caller, code) in cases {
            let error = await #expect(throws: RefundError.self) { try await engine.runBulkCancellation(request, caller: caller) }
            #expect(error?.code == code)
        }
        let unknown = #expect(throws: RefundError.self) { try engine.bulkStatus(jobID: "job_404") }
        #expect(unknown?.code == .jobNotFound)
    }

    @Test func startReturnsAtOnceAndProgressIsLive() async throws {
        let engine = Fixtures.engine(partitions: 2)
        #expect(await engine.putOrders(SyntheticEvent(event: "evt_live", orders: 3_000).allOrders()).isEmpty)
        let jobID = try await engine.startBulkCancellation(BulkCancelRequest(events: ["evt_live"], options: Self.settings), caller: Fixtures.staff)
        var status = try engine.bulkStatus(jobID: jobID)
        #expect(status.total == 3_000)
        for _ in 0..<2_000 where status.state != .completed {
            try await Task.sleep(for: .milliseconds(2))
            status = try engine.bulkStatus(jobID: jobID)
            #expect(status.processed <= status.total)
        }
        #expect(status.state == .completed && status.succeeded == 3_000)
    }
}

/// A clock that moves a millisecond every time it is read: the worst case of a wall clock for code that reads
/// it twice and expects the same instant.
final class TickingClock: EngineClock {
    private let current = Mutex(Fixtures.t0)
    func now() -> Timestamp {
        current.withLock {
            $0 = $0.adding(milliseconds: 1)
            return $0
        }
    }
}

@Suite struct BulkClockTests {
    /// Found by the pacing test under load: a chunk read the clock for "due" before it made its refunds at a
    /// later reading; when a millisecond passed in between, none of the chunk's first attempts was due, and the
    /// whole chunk waited for the retry scheduler (the job came back with 75 of 300 refunds pending).
    @Test func everyRefundOfAChunkGoesToTheGatewayAtOnceWhateverTheClockDoes() async throws {
        let engine = Engine(
            configuration: EngineConfiguration(partitions: 2, bulkChunkSize: 25), gateway: SimulatedGateway(),
            clock: TickingClock())
        let failed = await engine.putOrders((0..<200).map { Fixtures.tickets(id: "ord_\($0)", event: "evt_tick", count: 1) })
        #expect(failed.isEmpty)
        let status = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_tick"], options: RefundOptions(method: .original, reason: "event_cancelled")),
            caller: Fixtures.staff)
        #expect(status.succeeded == 200 && status.pending == 0 && status.state == .completed, "\(status)")
    }
}
