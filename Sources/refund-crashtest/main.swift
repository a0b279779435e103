import Foundation
import RefundCore
import RefundEngine

// The crash-test subject: opens a durable engine (fsync=always) on a data directory and runs a mixed workload
// that never runs out, from several concurrent workers, until it is killed: new orders (card, or card and
// wallet), refunds of single lines to the original tenders, to the account balance or without money, and
// whole-order cancellations. After each acknowledged change it prints one line:
//
//     ack put <order id>
//     ack refund <refund id> <order id> <lines, comma-separated>
//
// A test kills it with SIGKILL at a random moment and checks that every acknowledged change survived, exactly
// once (Tests/RefundEngineTests/CrashTests.swift; tools/crash_rounds.sh runs many rounds).
//
// Usage: refund-crashtest <data dir> <seed> [workers]
let arguments = CommandLine.arguments
guard arguments.count >= 3, let seed = UInt64(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: refund-crashtest <data dir> <seed> [workers]\n".utf8))
    exit(2)
}
let directory = arguments[1]
let workers = arguments.count > 3 ? Int(arguments[3]) ?? 8 : 8

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func order(_ id: String, _ rng: inout SplitMix64) -> Order {
    let lineCount = 1 + Int(rng.next() % 4)
    let price = 1000 + Int64(rng.next() % 9) * 250
    let lines = (1...lineCount).map { OrderLine(id: "l\($0)", ticketType: "tt_\($0 % 3)", price: price, tax: 100) }
    let total = price * Int64(lineCount)
    let wallet = rng.next() % 3 == 0 ? total / 3 : 0
    var tenders = [Tender(id: "t1", method: .card, amount: total - wallet, gatewayRef: "pi_\(id)")]
    if wallet > 0 { tenders.append(Tender(id: "t2", method: .wallet, amount: wallet)) }
    return Order(id: id, event: "evt_\(rng.next() % 3)", customer: "cus_\(rng.next() % 7)", currency: .gbp, lines: lines, tenders: tenders)
}

/// Refunds `lines` of `id`; nil when a rule said no (already refunded, no such line: nothing changed). A stopped
/// engine is fatal. (A function of its own: the release compiler crashed on this inside the worker's loop.)
func refund(_ engine: Engine, _ id: String, lines: [String]?, method: RefundMethod, staff: Caller) async throws -> Refund? {
    do {
        return try await engine.createRefund(
            orderID: id, RefundOptions(lines: lines, method: method, reason: "crash_test"), caller: staff)
    } catch where error.code != .engineStopped {
        return nil
    }
}

/// One worker: puts orders and refunds lines of its own orders until the process is killed.
func work(_ engine: Engine, worker: Int, known: [String], staff: Caller) async throws {
    var rng = SplitMix64(seed: seed &* 1_000_003 &+ UInt64(worker))
    var mine = known.filter { _ in rng.next() % UInt64(workers) == 0 }
    var next = 0
    while true {
        let roll = rng.next() % 10
        if roll < 3 || mine.isEmpty {
            next += 1
            let id = "ord_\(seed)_\(worker)_\(next)"
            try await engine.putOrder(order(id, &rng))
            say("ack put \(id)")
            mine.append(id)
            continue
        }
        let id = mine[Int(rng.next() % UInt64(mine.count))]
        let lines: [String]? = roll == 9 ? nil : ["l\(1 + rng.next() % 4)"]
        let method: RefundMethod = [.original, .original, .balance, .none][Int(rng.next() % 4)]
        if let made = try await refund(engine, id, lines: lines, method: method, staff: staff) {
            say("ack refund \(made.id) \(id) \(made.lines.map(\.line).joined(separator: ","))")
        }
    }
}

do {
    let engine = try await Engine.open(
        configuration: EngineConfiguration(partitions: 2),
        durability: DurabilityOptions(directory: directory, fsync: .always, snapshotEveryRecords: 397))
    // Gateway attempts a crash interrupted are due: send them before anything else (a daemon's retry
    // scheduler does the same).
    await engine.runDueAttempts()
    let known = await engine.allOrderStates().map(\.order.id)
    say("ready")
    let staff = Caller.staff("crash")
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<workers {
            group.addTask { try await work(engine, worker: worker, known: known, staff: staff) }
        }
        try await group.waitForAll()
    }
} catch {
    say("error \(error)")
    exit(1)
}
