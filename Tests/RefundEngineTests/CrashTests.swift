import Foundation
import RefundCore
import RefundEngine
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// kill -9 tests: a real process runs a mixed workload (new orders, line refunds to the tenders, to the balance
/// and without money, whole cancellations) from eight concurrent workers with fsync=always and prints each
/// acknowledged change; the test kills it at a seeded random moment, recovers the data directory and checks that
/// every acknowledged order and refund is there exactly once and the money invariants hold. Then it closes the
/// engine cleanly and opens it again: the whole observable state must be identical (a restart after a crash and
/// a clean stop must apply nothing twice). Rounds run on one data directory, so recovery also runs over earlier
/// recoveries, snapshots and torn tails. `swift test` runs 20 rounds; `tools/crash_rounds.sh N` runs N.
@Suite struct CrashTests {
    static var harness: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("refund-crashtest")
    }

    static let rounds = Int(ProcessInfo.processInfo.environment["REFUND_CRASH_ROUNDS"] ?? "") ?? 20

    struct Acknowledged {
        var orders = Set<String>()
        /// refund id → order id
        var refunds: [String: String] = [:]
    }

    /// Starts the harness, reads its stdout until `acks` acknowledgements, then SIGKILLs it.
    static func run(directory: String, seed: UInt64, acks: Int, into acknowledged: inout Acknowledged) throws -> Int {
        let process = Process()
        process.executableURL = harness
        process.arguments = [directory, String(seed)]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        var count = 0
        var buffer = Data()
        let reader = pipe.fileHandleForReading
        reading: while count < acks {
            let chunk = reader.availableData
            if chunk.isEmpty { break }  // the harness died
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                let parts = line.split(separator: " ").map(String.init)
                if parts.count >= 3, parts[0] == "ack", parts[1] == "put" {
                    acknowledged.orders.insert(parts[2])
                    count += 1
                } else if parts.count >= 4, parts[0] == "ack", parts[1] == "refund" {
                    acknowledged.refunds[parts[2]] = parts[3]
                    count += 1
                } else if line.hasPrefix("error") {
                    Issue.record("harness: \(line)")
                    break reading
                }
                if count >= acks { break reading }
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return count
    }

    static func open(_ directory: String) async throws -> Engine {
        try await Engine.open(
            configuration: EngineConfiguration(partitions: 2), durability: DurabilityOptions(directory: directory))
    }

    @Test func killNineUnderLoadLosesNothingAcknowledgedAndDoublesNothing() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.harness.path), "build refund-crashtest first")
        let dir = TemporaryDirectory("crash")
        var rng = SplitMix64(seed: 2026)
        var acknowledged = Acknowledged()
        var total = 0
        for round in 0..<Self.rounds {
            let acks = Int(rng.next() % 120)  // 0…119 acknowledgements, then kill -9
            total += try Self.run(directory: dir.path, seed: UInt64(round), acks: acks, into: &acknowledged)

            let engine = try await Self.open(dir.path)
            let states = await engine.allOrderStates()
            let byID = Dictionary(states.map { ($0.order.id, $0) }, uniquingKeysWith: { first, _ in first })
            for id in acknowledged.orders {
                #expect(byID[id] != nil, "round \(round): acknowledged order \(id) is lost")
            }
            for (refundID, orderID) in acknowledged.refunds {
                let found = byID[orderID]?.refunds.filter { $0.id == refundID }.count ?? 0
                #expect(found == 1, "round \(round): acknowledged refund \(refundID) found \(found) times")
            }
            for state in states {
                // Exactly once: no line refunded twice, no tender beyond what it captured.
                let lines = state.refunds.flatMap { $0.lines.map(\.line) }
                #expect(Set(lines).count == lines.count, "round \(round): \(state.order.id) refunded a line twice")
                for (i, tender) in state.order.tenders.enumerated() {
                    #expect(state.tenderRefunded[i] <= tender.amount)
                }
                let totals = state.totals
                #expect(totals.gross == totals.refunded + totals.outstanding + totals.retained + totals.net)
            }
            // A clean stop and a second open change nothing (the restart-cycle double apply).
            let before = await EngineImage.of(engine)
            try await engine.close()
            let reopened = try await Self.open(dir.path)
            let after = await EngineImage.of(reopened)
            #expect(after == before, "round \(round): a clean restart after a crash changed the state")
            try await reopened.close()
        }
        print("crash rounds: \(Self.rounds), acknowledged changes: \(total), orders \(acknowledged.orders.count), refunds \(acknowledged.refunds.count)")
        #expect(acknowledged.refunds.count > 50)
    }
}
