import Foundation
import RefundCore
import RefundEngine
import Testing

/// docs/operations.md, "Backups": the procedure it gives, run against the engine.
@Suite("backups and restores")
struct BackupRestoreTests {
    static func open(_ directory: String) async throws -> Engine {
        try await Engine.open(
            configuration: EngineConfiguration(partitions: 2), durability: DurabilityOptions(directory: directory),
            gateway: SimulatedGateway(), clock: ManualClock(Fixtures.t0))
    }

    @Test("a copy of a stopped daemon's directory verifies and restores to the same state; a restore of an older copy with engine.run marked makes ids of its own")
    func stoppedCopyRestores() async throws {
        let root = TemporaryDirectory("backup")
        let data = root.path + "/data", backup = root.path + "/backup"
        let fm = FileManager.default

        var engine = try await Self.open(data)
        for i in 1...20 { try await engine.putOrder(Fixtures.contractOrder(id: "ord_\(i)")) }
        for i in 1...10 {
            try await engine.createRefund(orderID: "ord_\(i)", Fixtures.options(fee: .order(500)), caller: Fixtures.staff)
        }
        let backedUp = await engine.canonicalHash()
        try await engine.close()  // refundd does this on SIGTERM: a snapshot of every partition, logs fsynced

        // The backup: a plain copy of the stopped daemon's directory.
        try fm.copyItem(atPath: data, toPath: backup)
        #expect(DataDirectoryInspector(directory: backup).verify().ok)

        // The daemon goes on after the backup; then its directory is lost.
        engine = try await Self.open(data)
        let lost = try await engine.createRefund(orderID: "ord_11", Fixtures.options(), caller: Fixtures.staff)
        #expect(lost.id == "rf_1_ord_11")
        try await engine.close()
        try fm.removeItem(atPath: data)

        // Restore without marking engine.run: the engine cannot know about rf_1_ord_11, and makes that id again
        // for other money (its gateway key too). This is what the marking step prevents.
        try fm.copyItem(atPath: backup, toPath: data)
        engine = try await Self.open(data)
        #expect(await engine.canonicalHash() == backedUp)
        let again = try await engine.createRefund(orderID: "ord_11", Fixtures.options(.offline), caller: Fixtures.staff)
        #expect(again.id == lost.id)
        try await engine.close()
        try fm.removeItem(atPath: data)

        // The documented restore: copy, verify, mark engine.run with the time in milliseconds and "ids tagged".
        try fm.copyItem(atPath: backup, toPath: data)
        #expect(DataDirectoryInspector(directory: data).verify().ok)
        let run = Fixtures.t0.milliseconds  // printf 'run %s\nids tagged\n' "$(date +%s%3N)" > engine.run
        try "run \(run)\nids tagged\n".write(toFile: data + "/engine.run", atomically: true, encoding: .utf8)
        engine = try await Self.open(data)
        #expect(await engine.canonicalHash() == backedUp)
        let fresh = try await engine.createRefund(orderID: "ord_11", Fixtures.options(), caller: Fixtures.staff)
        #expect(fresh.id == "rf_1r\(run + 1)_ord_11")
        #expect(fresh.id != lost.id)
        try await engine.close()
        // The mark stays: every later run tags its ids too, with a higher number.
        engine = try await Self.open(data)
        let later = try await engine.createRefund(orderID: "ord_12", Fixtures.options(), caller: Fixtures.staff)
        #expect(later.id == "rf_1r\(run + 2)_ord_12")
        try await engine.close()
    }
}
