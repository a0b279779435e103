import Foundation
import RefundCore
import RefundEngine
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// kill -9 tests: a real process applies refunds with fsync=always and prints each acknowledged refund; the
/// test kills it at a seeded random moment, recovers the data directory, and checks that every acknowledged
/// refund is there exactly once and the money invariants hold. 20 rounds on one data directory, so recovery
/// also runs over earlier recoveries, snapshots and torn tails.
@Suite struct CrashTests {
    static var harness: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("refund-crashtest")
    }

    /// Starts the harness, reads its stdout until `acks` acknowledgements (or its end), then SIGKILLs it.
    static func run(directory: String, seed: UInt64, acks: Int) throws -> [String] {
        let process = Process()
        process.executableURL = harness
        process.arguments = [directory, String(seed)]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        var acknowledged: [String] = []
        var buffer = Data()
        let reader = pipe.fileHandleForReading
        reading: while acknowledged.count < acks {
            let chunk = reader.availableData
            if chunk.isEmpty { break }  // the harness finished (or died)
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.hasPrefix("ack ") { acknowledged.append(String(line.split(separator: " ")[1])) }
                if line.hasPrefix("error") { Issue.record("harness: \(line)") }
                if line == "done" { break reading }
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return acknowledged
    }

    @Test func killNineNeverLosesAnAcknowledgedRefund() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.harness.path), "build refund-crashtest first")
        let dir = TemporaryDirectory("crash")
        var rng = SplitMix64(seed: 2026)
        var everAcknowledged = Set<String>()
        for round in 0..<20 {
            let acks = Int(rng.next() % 25)  // 0…24 acknowledgements, then kill -9
            let acknowledged = try Self.run(directory: dir.path, seed: UInt64(round), acks: acks)
            everAcknowledged.formUnion(acknowledged)

            let engine = try await Engine.open(
                configuration: EngineConfiguration(partitions: 2), durability: DurabilityOptions(directory: dir.path))
            for id in everAcknowledged {
                let refund = try await engine.refund(id)
                #expect(refund.status == .succeeded, "round \(round): \(id)")
            }
            for state in await engine.allOrderStates() {
                // Exactly once: no line refunded twice, no tender beyond what it captured.
                let lines = state.refunds.flatMap { $0.lines.map(\.line) }
                #expect(Set(lines).count == lines.count, "round \(round): \(state.order.id) refunded a line twice")
                for (i, tender) in state.order.tenders.enumerated() {
                    #expect(state.tenderRefunded[i] <= tender.amount)
                }
                let totals = state.totals
                #expect(totals.gross == totals.refunded + totals.outstanding + totals.retained + totals.net)
            }
            // Sometimes a clean shutdown with a snapshot; otherwise this engine is dropped as a crash would (its lock
            // released), so the next process can open the directory.
            if round % 5 == 4 { try await engine.close() } else { engine.kill() }
        }
        #expect(everAcknowledged.count > 50)
    }
}
