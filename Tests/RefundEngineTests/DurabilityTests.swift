import Foundation
import RefundCore
import RefundEngine
import RefundStorage
import Synchronization
import Testing

/// A fresh directory under the system temp folder, removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init(_ name: String = "refund") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Everything observable about an engine, for before/after comparisons.
struct EngineImage: Equatable {
    var hash: UInt64
    var states: [OrderState]
    var events: [OutboxEvent]
    var balances: [String: [String: Int64]]
    var inventory: [String: Int64]
    var attention: [String]

    static func of(_ engine: Engine) async -> EngineImage {
        EngineImage(
            hash: await engine.canonicalHash(), states: await engine.allOrderStates(),
            // Every event survives a restart with its sequence number, bulk summaries included (control log).
            events: await engine.events(after: 0, limit: 1_000_000),
            balances: await balances(engine),
            inventory: await engine.inventoryReleased(), attention: await engine.attention().map(\.id))
    }

    static func balances(_ engine: Engine) async -> [String: [String: Int64]] {
        var result: [String: [String: Int64]] = [:]
        for customer in ["cus_1", "cus_9"] + (0..<7).map({ "cus_\($0)" }) {
            result[customer] = await engine.balances(customer: customer)
        }
        return result
    }
}

@Suite struct DurabilityTests {
    static func open(_ dir: TemporaryDirectory, gateway: SimulatedGateway = SimulatedGateway(), clock: ManualClock = ManualClock(Fixtures.t0),
                     fsync: FsyncPolicy = .always, fileSystem: any StorageFileSystem = PosixFileSystem(), snapshotEvery: Int = 0)
        async throws -> Engine
    {
        try await Engine.open(
            configuration: EngineConfiguration(partitions: 3),
            durability: DurabilityOptions(directory: dir.path, fsync: fsync, snapshotEveryRecords: snapshotEvery, fileSystem: fileSystem),
            gateway: gateway, clock: clock)
    }

    /// A varied history: orders, partial refunds, a failure in the attention queue, a dispute, a request, a
    /// cancellation, a bulk job.
    static func history(_ engine: Engine, gateway: SimulatedGateway) async throws {
        try await engine.putOrder(Fixtures.contractOrder())
        for i in 0..<20 { try await engine.putOrder(Fixtures.tickets(id: "ord_h\(i)", event: i < 10 ? "evt_a" : "evt_b", count: 1 + i % 3)) }
        try await engine.createRefund(orderID: "ord_1", RefundOptions(method: .original, fee: .order(500), reason: "event_cancelled"), caller: Fixtures.staff)
        try await engine.createRefund(orderID: "ord_h1", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        gateway.script([.failed(code: "card_expired", retryable: false)])
        try await engine.createRefund(orderID: "ord_h2", Fixtures.options(), caller: Fixtures.staff)
        try await engine.openDispute(orderID: "ord_h3", reason: "chargeback", caller: Fixtures.staff)
        _ = try await engine.requestRefund(orderID: "ord_h4", lines: nil, reason: "ill", caller: .customer("cus_1"))
        try await engine.cancelOrder(orderID: "ord_h5", refund: false, reason: "fraud", caller: Fixtures.staff)
        try await engine.resendConfirmation(refundID: "rf_1_ord_1", caller: Fixtures.staff)
        _ = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_b"], options: RefundOptions(method: .original, fee: .order(100), reason: "event_cancelled")),
            caller: Fixtures.staff)
    }

    @Test func cleanRestartRestoresEverything() async throws {
        let dir = TemporaryDirectory()
        let gateway = SimulatedGateway()
        var engine: Engine? = try await Self.open(dir, gateway: gateway)
        try await Self.history(engine!, gateway: gateway)
        let before = await EngineImage.of(engine!)
        let job = try engine!.bulkStatus(jobID: "job_1")
        try await engine!.close()
        engine = nil

        let reopened = try await Self.open(dir)
        #expect(await EngineImage.of(reopened) == before)
        // Every fact of the job comes back; its pace (a measurement of the run, not logged) does not.
        var restored = try reopened.bulkStatus(jobID: "job_1")
        #expect(restored.ordersPerSecond == nil && restored.etaSeconds == nil)
        var original = job
        original.ordersPerSecond = nil
        restored.ordersPerSecond = nil
        #expect(restored == original)
        // New ids continue after the recovered ones.
        let next = try await reopened.runBulkCancellation(
            BulkCancelRequest(events: ["evt_a"], options: RefundOptions(method: .original, reason: "event_cancelled"), dryRun: true),
            caller: Fixtures.staff)
        #expect(next.jobID == "job_2")
        try await reopened.close()
    }

    @Test func restartWithoutSnapshotReplaysTheLogTheSameWayTwice() async throws {
        let dir = TemporaryDirectory()
        let gateway = SimulatedGateway()
        let engine = try await Self.open(dir, gateway: gateway)
        try await Self.history(engine, gateway: gateway)
        let before = await EngineImage.of(engine)
        // No close: the next open replays the log only (the process "died" with its log fsynced).
        engine.kill()
        let first = try await Self.open(dir)
        let replayed = await EngineImage.of(first)
        #expect(replayed == before)
        let summary = try #require(first.recoverySummary)
        #expect(summary.recordsReplayed > 20 && summary.ordersFromSnapshots == 0)
        first.kill()
        let second = try await Self.open(dir)
        #expect(await second.canonicalHash() == replayed.hash)
    }

    @Test func snapshotThenMoreChangesThenRecovery() async throws {
        let dir = TemporaryDirectory()
        let gateway = SimulatedGateway()
        let engine = try await Self.open(dir, gateway: gateway)
        try await Self.history(engine, gateway: gateway)
        // Snapshot while writes keep coming.
        async let snapshot: Void = engine.snapshot()
        for i in 0..<30 { try await engine.putOrder(Fixtures.tickets(id: "ord_s\(i)", event: "evt_c", count: 2)) }
        try await snapshot
        for i in 0..<30 where i % 2 == 0 { try await engine.createRefund(orderID: "ord_s\(i)", Fixtures.options(), caller: Fixtures.staff) }
        try await engine.snapshot()
        try await engine.createRefund(orderID: "ord_s1", Fixtures.options(lines: ["l2"]), caller: Fixtures.staff)
        let before = await EngineImage.of(engine)
        engine.kill()
        let reopened = try await Self.open(dir)
        #expect(await EngineImage.of(reopened) == before)
        let summary = try #require(reopened.recoverySummary)
        #expect(summary.ordersFromSnapshots > 0)
    }

    @Test func automaticSnapshotsKeepRecoveryShort() async throws {
        let dir = TemporaryDirectory()
        let engine = try await Self.open(dir, snapshotEvery: 50)
        #expect(await engine.putOrders((0..<400).map { Fixtures.tickets(id: "ord_a\($0)", count: 1) }).isEmpty)
        for i in 0..<200 { try await engine.putOrder(Fixtures.tickets(id: "ord_b\(i)", count: 1)) }
        // Wait for the automatic snapshots (a condition, not a fixed sleep).
        try await waitUntil { await engine.statistics().snapshots?.lastSuccessAt != nil }
        let before = await engine.canonicalHash()
        engine.kill()
        let reopened = try await Self.open(dir)
        #expect(await reopened.canonicalHash() == before)
        #expect(try #require(reopened.recoverySummary).ordersFromSnapshots > 0)
    }

    @Test func snapshotsAlsoTriggerBySize() async throws {
        let dir = TemporaryDirectory()
        let engine = try await Engine.open(
            configuration: EngineConfiguration(partitions: 1),
            durability: DurabilityOptions(directory: dir.path, snapshotEveryRecords: 0, snapshotEveryBytes: 4096))
        for i in 0..<100 { try await engine.putOrder(Fixtures.tickets(id: "ord_z\(i)", count: 2)) }
        try await waitUntil {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path + "/p0")) ?? []).contains { $0.hasSuffix(".snap") }
        }
        try await engine.close()
    }

    @Test func fsyncFailureStopsTheEngineAndNothingIsAcknowledged() async throws {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        let engine = try await Self.open(dir, fileSystem: fs)
        try await engine.putOrder(Fixtures.tickets(id: "ord_ok", count: 2))
        fs.failFsync(afterSuccessfulFsyncs: 0, errno: EIO)
        let failed = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_ok", Fixtures.options(lines: ["l1"]), caller: Fixtures.staff)
        }
        #expect(failed?.code == .engineStopped)
        let after = await #expect(throws: RefundError.self) {
            try await engine.putOrder(Fixtures.tickets(id: "ord_next", count: 1))
        }
        #expect(after?.code == .engineStopped)
        #expect(after?.message.contains("log") == true)
        // What was acknowledged is there after a restart; the unacknowledged refund may or may not be (it was
        // never confirmed), but the order is intact and consistent.
        #expect(engine.failure?.code == .engineStopped)
        engine.kill()
        let reopened = try await Self.open(dir)
        let view = try await reopened.order("ord_ok")
        #expect(view.totals.gross == view.totals.refunded + view.totals.outstanding + view.totals.retained + view.totals.net)
    }

    @Test func writeFailureStopsTheEngine() async throws {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        let engine = try await Self.open(dir, fileSystem: fs)
        try await engine.putOrder(Fixtures.tickets(id: "ord_w", count: 1))
        fs.failWrite(afterSuccessfulWrites: 0, errno: ENOSPC)
        let failed = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_w", Fixtures.options(), caller: Fixtures.staff)
        }
        #expect(failed?.code == .engineStopped)
        let read = await #expect(throws: RefundError.self) { try await engine.order("ord_w") }
        #expect(read?.code == .engineStopped)
    }

    @Test func corruptLogRefusesToStartUnlessRepaired() async throws {
        let dir = TemporaryDirectory()
        let engine = try await Self.open(dir)
        for i in 0..<40 { try await engine.putOrder(Fixtures.tickets(id: "ord_c\(i)", count: 1)) }
        // Find a partition log with several blocks and flip a byte early in it.
        let partitionDir = dir.path + "/p0"
        let segment = try #require(FileManager.default.contentsOfDirectory(atPath: partitionDir).first { $0.hasSuffix(".log") })
        let path = partitionDir + "/" + segment
        var bytes = try #require(FileManager.default.contents(atPath: path))
        #expect(bytes.count > 200)
        bytes[60] ^= 0xFF
        engine.kill()
        try bytes.write(to: URL(fileURLWithPath: path))
        let refused = await #expect(throws: RefundError.self) { _ = try await Self.open(dir) }
        #expect(refused?.code == .dataCorrupt)
        #expect(refused?.message.contains(segment) == true)
        let repaired = try await Engine.open(
            configuration: EngineConfiguration(partitions: 3),
            durability: DurabilityOptions(directory: dir.path, repair: true), gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
        #expect(try #require(repaired.recoverySummary).repairs.count == 1)
    }

    @Test func aDifferentPartitionCountIsRefused() async throws {
        let dir = TemporaryDirectory()
        let engine = try await Self.open(dir)
        try await engine.putOrder(Fixtures.tickets(id: "ord_x", count: 1))
        try await engine.close()
        let refused = await #expect(throws: RefundError.self) {
            _ = try await Engine.open(configuration: EngineConfiguration(partitions: 5), durability: DurabilityOptions(directory: dir.path))
        }
        #expect(refused?.code == .storageFailed)
    }
}

@Suite struct InspectorTests {
    @Test func verifiesListsAndDumps() async throws {
        let dir = TemporaryDirectory("inspect")
        let gateway = SimulatedGateway()
        let engine = try await DurabilityTests.open(dir, gateway: gateway)
        try await DurabilityTests.history(engine, gateway: gateway)
        try await engine.snapshot()
        try await engine.putOrder(Fixtures.tickets(id: "ord_after", count: 1))

        let inspector = DataDirectoryInspector(directory: dir.path)
        let report = inspector.verify()
        #expect(report.ok)
        #expect(report.logs.map(\.name) == ["p0", "p1", "p2", "control"])
        #expect(report.logs.reduce(0) { $0 + $1.records } > 20)
        #expect(report.logs.filter { $0.name != "control" }.allSatisfy { !$0.snapshots.isEmpty && !$0.segments.isEmpty })

        var lines: [String] = []
        try inspector.dumpRecords { lines.append($0) }
        // One line per commit: a commit batch (a bulk chunk, a batch of gateway answers) is several lines with
        // its one sequence number, so the distinct (log, sequence) pairs are the records.
        let records = Set(
            lines.compactMap { line -> String? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                return "\(object["log"] ?? "")/\(object["sequence"] ?? "")"
            })
        #expect(records.count == report.logs.reduce(0) { $0 + $1.records })
        #expect(lines.count >= records.count)
        #expect(lines.contains { $0.contains("\"type\":\"refund_created\"") && $0.contains("\"order_id\":\"ord_1\"") })
        #expect(lines.contains { $0.contains("job_started job_1") })
        for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil) }

        // A damaged record is reported with its file and offset, and nothing is changed.
        let p0 = dir.path + "/p0"
        let segment = try #require(FileManager.default.contentsOfDirectory(atPath: p0).filter { $0.hasSuffix(".log") }.sorted().last)
        var bytes = try #require(FileManager.default.contents(atPath: p0 + "/" + segment))
        let size = bytes.count
        bytes[40] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: p0 + "/" + segment))
        let damaged = inspector.verify()
        #expect(!damaged.ok)
        #expect(damaged.logs[0].problems.first?.contains(segment) == true)
        #expect(FileManager.default.contents(atPath: p0 + "/" + segment)?.count == size)

        // Half a block appended at the end (a crash mid-write) is reported as a torn tail, not a problem.
        let p1 = dir.path + "/p1"
        let last = try #require(FileManager.default.contentsOfDirectory(atPath: p1).filter { $0.hasSuffix(".log") }.sorted().last)
        let handle = try #require(FileHandle(forWritingAtPath: p1 + "/" + last))
        handle.seekToEndOfFile()
        handle.write(Data([0x52, 0x46, 0x42, 0x4B, 0, 0, 1, 0, 9, 9]))
        handle.closeFile()
        let torn = inspector.verify()
        #expect(torn.logs[1].problems.isEmpty)
        #expect(torn.logs[1].tornTail?.contains(last) == true)
    }
}

/// A gateway that answers its first `answering` batches and then never answers again (the process "dies"
/// with refunds committed and attempts in flight).
final class StallingGateway: PaymentGateway {
    let answering: Int
    private let state = Mutex<(calls: Int, released: Bool, parked: [CheckedContinuation<Void, Never>])>((0, false, []))

    init(answering: Int) { self.answering = answering }

    /// Calls that are stalled now.
    var stalled: Int { state.withLock { $0.parked.count } }

    /// Lets every stalled call (and every later one) answer, so nothing outlives the test.
    func release() {
        let parked = state.withLock { s in
            s.released = true
            defer { s.parked = [] }
            return s.parked
        }
        for continuation in parked { continuation.resume() }
    }

    func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let answerNow = state.withLock { s in
                s.calls += 1
                if s.calls <= answering || s.released { return true }
                s.parked.append(continuation)
                return false
            }
            if answerNow { continuation.resume() }
        }
        return requests.map { _ in .succeeded(reference: nil) }
    }
}

/// Polls `condition` until it holds (at most `seconds`): for background work (automatic snapshots, resumed
/// jobs) that a test must wait for without a fixed sleep.
func waitUntil(seconds: Double = 20, _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(seconds * 1000)))
    while !(await condition()) {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(seconds) s")
            return
        }
        try await Task.sleep(for: .milliseconds(2))
    }
}

@Suite struct BulkResumeTests {
    @Test func anInterruptedJobResumesAndRefundsNoOrderTwice() async throws {
        let dir = TemporaryDirectory("resume")
        let configuration = EngineConfiguration(partitions: 2, bulkChunkSize: 40)
        let stalling = StallingGateway(answering: 3)
        defer { stalling.release() }
        let first = try await Engine.open(
            configuration: configuration, durability: DurabilityOptions(directory: dir.path), gateway: stalling,
            clock: ManualClock(Fixtures.t0))
        #expect(await first.putOrders(SyntheticEvent(event: "evt_r", orders: 600).allOrders()).isEmpty)
        let jobID = try await first.startBulkCancellation(
            BulkCancelRequest(events: ["evt_r"], options: RefundOptions(method: .original, reason: "event_cancelled")),
            caller: Fixtures.staff)
        // Wait until the job is stuck: both partitions' gateway calls stalled, some orders processed, not all.
        try await waitUntil { stalling.stalled == 2 }
        let stuck = try first.bulkStatus(jobID: jobID)
        #expect(stuck.state == .running && stuck.processed > 0 && stuck.processed < 600)

        // "Restart": a new engine on the same directory; the old one is killed with its gateway stuck.
        first.kill()
        let second = try await Engine.open(
            configuration: configuration, durability: DurabilityOptions(directory: dir.path), gateway: SimulatedGateway(),
            clock: ManualClock(Fixtures.t0))
        #expect(try #require(second.recoverySummary).resumedJobs == [jobID])
        try await waitUntil {
            await second.runDueAttempts()  // attempts the first process never got answered
            return (try? second.bulkStatus(jobID: jobID).state) == .completed
        }
        let status = try second.bulkStatus(jobID: jobID)
        #expect(status.state == .completed)
        #expect(status.total == 600 && status.succeeded == 600 && status.skipped == 0)
        for state in await second.allOrderStates() {
            #expect(state.refunds.count == 1, "\(state.order.id) has \(state.refunds.count) refunds")
            #expect(state.refunds.first?.status == .succeeded)
        }
    }
}
