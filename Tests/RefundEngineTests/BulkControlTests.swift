import Foundation
import RefundCore
import Testing

@testable import RefundEngine

// `bulk.pause`, `bulk.resume`, `bulk.abort`: a running job stops selecting orders and goes on, or stops for good;
// refunds it made stay and settle; a restart keeps what the operator decided.
@Suite struct BulkControlTests {
    static let request = BulkCancelRequest(
        events: ["evt_c"], options: RefundOptions(method: .original, reason: "event_cancelled"))

    /// A paced engine: 60 gateway requests a second over 2 partitions, so a job of a few hundred orders runs for
    /// seconds, a chunk of 30 orders per partition at a time.
    static let configuration = EngineConfiguration(partitions: 2, gatewayLimits: GatewayLimits(requestsPerSecond: 60))

    static func put(_ engine: Engine, _ count: Int) async {
        let failed = await engine.putOrders((0..<count).map { Fixtures.tickets(id: "ord_\($0)", event: "evt_c", count: 1) })
        #expect(failed.isEmpty)
    }

    /// Waits until the job has processed some orders (and not all).
    static func started(_ engine: Engine, _ jobID: String) async throws {
        try await waitUntil { ((try? engine.bulkStatus(jobID: jobID).processed) ?? 0) > 0 }
    }

    /// Puts 240 orders into `engine` and starts a job cancelling them; returns once it has processed some.
    static func runningJob(on engine: Engine) async throws -> String {
        await put(engine, 240)
        let jobID = try await engine.startBulkCancellation(request, caller: Fixtures.staff)
        try await started(engine, jobID)
        return jobID
    }

    static func refunds(_ engine: Engine) async -> [String: Int] {
        var counts: [String: Int] = [:]
        for state in await engine.allOrderStates() { counts[state.order.id] = state.refunds.count }
        return counts
    }

    @Test func aPausedJobTouchesNoNewOrderUntilResumed() async throws {
        let engine = Engine(configuration: Self.configuration, gateway: SimulatedGateway())
        let jobID = try await Self.runningJob(on: engine)
        let paused = try await engine.pauseBulk(jobID: jobID, caller: Fixtures.staff)
        #expect(paused.state == .paused && paused.processed < 240 && paused.etaSeconds == nil, "\(paused)")
        // From the answer on, no order is touched: the count of refunds stays where the pause left it.
        let refundedAtPause = await Self.refunds(engine).values.reduce(0, +)
        #expect(refundedAtPause == paused.processed)
        try await Task.sleep(for: .milliseconds(700))
        #expect(await Self.refunds(engine).values.reduce(0, +) == refundedAtPause)
        #expect(try engine.bulkStatus(jobID: jobID).processed == paused.processed)

        let resumed = try await engine.resumeBulk(jobID: jobID, caller: Fixtures.staff)
        #expect(resumed.state == .running)
        try await waitUntil { (try? engine.bulkStatus(jobID: jobID).state) == .completed }
        let done = try engine.bulkStatus(jobID: jobID)
        #expect(done.processed == 240 && done.succeeded == 240 && done.pending == 0, "\(done)")
        #expect(await Self.refunds(engine).values.allSatisfy { $0 == 1 }, "every order refunded exactly once")
    }

    @Test func anAbortedJobStopsForGoodAndKeepsItsRefunds() async throws {
        let engine = Engine(configuration: Self.configuration, gateway: SimulatedGateway())
        let jobID = try await Self.runningJob(on: engine)
        let aborted = try await engine.abortBulk(jobID: jobID, caller: Fixtures.staff)
        #expect(aborted.state == .aborted && aborted.processed > 0 && aborted.processed < 240, "\(aborted)")
        try await Task.sleep(for: .milliseconds(500))
        let refunds = await Self.refunds(engine)
        #expect(refunds.values.reduce(0, +) == aborted.processed, "no order refunded after the abort")
        #expect(refunds.values.allSatisfy { $0 <= 1 })
        let final = try engine.bulkStatus(jobID: jobID)
        #expect(final.state == .aborted && final.succeeded == aborted.processed && final.pending == 0)
        // The job's events: a summary and a last update, both saying aborted.
        let events = await engine.events(after: 0).filter {
            $0.jobID == jobID && ($0.kind == .bulkSummary || $0.kind == .bulkUpdate)
        }
        #expect(events.map(\.kind) == [.bulkSummary, .bulkUpdate])
        #expect(events.allSatisfy { $0.text?.hasSuffix("state=aborted") ?? false }, "\(events)")
        // Nothing more can be asked of it.
        for steer in [engine.pauseBulk, engine.resumeBulk, engine.abortBulk] {
            await #expect(throws: RefundError.self) { _ = try await steer(jobID, Fixtures.staff) }
        }
    }

    @Test func abortingAPausedJobEndsIt() async throws {
        let engine = Engine(configuration: Self.configuration, gateway: SimulatedGateway())
        let jobID = try await Self.runningJob(on: engine)
        let paused = try await engine.pauseBulk(jobID: jobID, caller: Fixtures.staff)
        let aborted = try await engine.abortBulk(jobID: jobID, caller: Fixtures.staff)
        #expect(aborted.state == .aborted && aborted.processed == paused.processed, "\(aborted)")
        #expect(await Self.refunds(engine).values.reduce(0, +) == paused.processed)
    }

    @Test func whatCannotBeAskedIsRefusedAndChangesNothing() async throws {
        let engine = Engine(configuration: EngineConfiguration(partitions: 2), gateway: SimulatedGateway())
        await Self.put(engine, 20)
        func code(_ body: () async throws(RefundError) -> BulkJobStatus) async -> String? {
            do throws(RefundError) {
                _ = try await body()
                return nil
            } catch { return error.code.rawValue }
        }
        #expect(await code { () throws(RefundError) in try await engine.pauseBulk(jobID: "job_404", caller: Fixtures.staff) } == "job_not_found")
        let done = try await engine.runBulkCancellation(Self.request, caller: Fixtures.staff)
        try await waitUntil { (try? engine.bulkStatus(jobID: done.jobID).state) == .completed }
        #expect(await code { () throws(RefundError) in try await engine.pauseBulk(jobID: done.jobID, caller: Fixtures.staff) } == "invalid_state")
        #expect(await code { () throws(RefundError) in try await engine.abortBulk(jobID: done.jobID, caller: Fixtures.staff) } == "invalid_state")
        #expect(await code { () throws(RefundError) in try await engine.resumeBulk(jobID: done.jobID, caller: Fixtures.staff) } == "invalid_state")
        #expect(try engine.bulkStatus(jobID: done.jobID).state == .completed)

        let slow = Engine(configuration: Self.configuration, gateway: SimulatedGateway())
        let jobID = try await Self.runningJob(on: slow)
        #expect(await code { () throws(RefundError) in try await slow.resumeBulk(jobID: jobID, caller: Fixtures.staff) } == "invalid_state")
        _ = try await slow.pauseBulk(jobID: jobID, caller: Fixtures.staff)
        #expect(await code { () throws(RefundError) in try await slow.pauseBulk(jobID: jobID, caller: Fixtures.staff) } == "invalid_state")
        _ = try await slow.abortBulk(jobID: jobID, caller: Fixtures.staff)

        var dry = Self.request
        dry.dryRun = true
        let dryJob = try await engine.runBulkCancellation(dry, caller: Fixtures.staff)
        #expect(await code { () throws(RefundError) in try await engine.pauseBulk(jobID: dryJob.jobID, caller: Fixtures.staff) } == "invalid_state")
    }

    @Test func controlRecordsOfSteeredJobsRoundTripAndLieNot() throws {
        // job_1 paused, job_1 resumed, job_1 aborted after 42 of 120 with one skipped order.
        #expect(throws: Never.self) { try ControlLog.decode([6, 5] + Array("job_1".utf8)) }
        guard case .mode("job_1", paused: false) = try ControlLog.decode([7, 5] + Array("job_1".utf8)) else {
            Issue.record("kind 7 is a resume")
            return
        }
        let aborted: [UInt8] = [8, 5] + Array("job_1".utf8) + [120, 42, 1, 5] + Array("ord_9".utf8) + [6] + Array("frozen".utf8)
        guard case .queued(let job) = try ControlLog.decode(aborted) else {
            Issue.record("kind 8 ends a job")
            return
        }
        #expect(job.total == 120 && job.abortedAfter == 42 && job.skipped.map(\.orderID) == ["ord_9"])
        // An aborted job that processed more orders than it selected is a damaged record, not a job.
        #expect(throws: BinaryDecodingError.self) { try ControlLog.decode([8, 5] + Array("job_1".utf8) + [42, 120, 0]) }
    }

    // MARK: Across restarts

    static func open(_ dir: TemporaryDirectory) async throws -> Engine {
        try await Engine.open(
            configuration: configuration, durability: DurabilityOptions(directory: dir.path), gateway: SimulatedGateway())
    }

    /// A durable engine on `dir` running a job (``runningJob(on:)``).
    static func runningJob(_ dir: TemporaryDirectory) async throws -> (Engine, String) {
        let engine = try await open(dir)
        return (engine, try await runningJob(on: engine))
    }

    @Test(arguments: [false, true])
    func aPausedJobStaysPausedAcrossARestart(killed: Bool) async throws {
        let dir = TemporaryDirectory("pause")
        let (first, jobID) = try await Self.runningJob(dir)
        let paused = try await first.pauseBulk(jobID: jobID, caller: Fixtures.staff)
        if killed { first.kill() } else { try await first.close() }

        let second = try await Self.open(dir)
        #expect(try #require(second.recoverySummary).resumedJobs.isEmpty, "a paused job is not resumed")
        let restored = try second.bulkStatus(jobID: jobID)
        #expect(restored.state == .paused && restored.total == 240, "\(restored)")
        #expect(restored.processed == paused.processed, "the orders it refunded count as processed")
        try await Task.sleep(for: .milliseconds(400))
        #expect(await Self.refunds(second).values.reduce(0, +) == paused.processed)

        _ = try await second.resumeBulk(jobID: jobID, caller: Fixtures.staff)
        try await waitUntil { (try? second.bulkStatus(jobID: jobID).state) == .completed }
        let done = try second.bulkStatus(jobID: jobID)
        #expect(done.processed == 240 && done.succeeded == 240, "\(done)")
        #expect(await Self.refunds(second).values.allSatisfy { $0 == 1 }, "every order refunded exactly once")
        try await second.close()

        // And once more: the completed job stays completed.
        let third = try await Self.open(dir)
        #expect(try third.bulkStatus(jobID: jobID).state == .completed)
        try await third.close()
    }

    @Test func anAbortedJobStaysAbortedAcrossARestart() async throws {
        let dir = TemporaryDirectory("abort")
        let (first, jobID) = try await Self.runningJob(dir)
        let aborted = try await first.abortBulk(jobID: jobID, caller: Fixtures.staff)
        first.kill()

        let second = try await Self.open(dir)
        #expect(try #require(second.recoverySummary).resumedJobs.isEmpty)
        let restored = try second.bulkStatus(jobID: jobID)
        #expect(restored.state == .aborted && restored.processed == aborted.processed, "\(restored)")
        try await Task.sleep(for: .milliseconds(300))
        #expect(await Self.refunds(second).values.reduce(0, +) == aborted.processed)
        try await second.close()
    }

    @Test func aJobPausedBeforeARestartCanBeAbortedAfterIt() async throws {
        let dir = TemporaryDirectory("pause-abort")
        let (first, jobID) = try await Self.runningJob(dir)
        let paused = try await first.pauseBulk(jobID: jobID, caller: Fixtures.staff)
        try await first.close()

        let second = try await Self.open(dir)
        let aborted = try await second.abortBulk(jobID: jobID, caller: Fixtures.staff)
        #expect(aborted.state == .aborted && aborted.processed == paused.processed, "\(aborted)")
        try await second.close()
        let third = try await Self.open(dir)
        #expect(try third.bulkStatus(jobID: jobID).state == .aborted)
        #expect(await Self.refunds(third).values.reduce(0, +) == paused.processed)
        try await third.close()
    }
}
