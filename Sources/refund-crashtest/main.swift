import Foundation
import RefundCore
import RefundEngine

// The crash-test subject: opens a durable engine (fsync=always) on a data directory, makes sure a fixed set of
// orders exists, then refunds their lines one by one, printing `ack <refund id> <order id> <line>` after each
// refund is acknowledged (i.e. after `createRefund` returned). A test kills it with SIGKILL at a random moment
// and checks that every acknowledged refund survived, exactly once.
//
// Usage: refund-crashtest <data dir> <seed> [orders]
let arguments = CommandLine.arguments
guard arguments.count >= 3, let seed = UInt64(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: refund-crashtest <data dir> <seed> [orders]\n".utf8))
    exit(2)
}
let directory = arguments[1]
let orderCount = arguments.count > 3 ? Int(arguments[3]) ?? 60 : 60

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

do {
    let engine = try await Engine.open(
        configuration: EngineConfiguration(partitions: 2),
        durability: DurabilityOptions(directory: directory, fsync: .always, snapshotEveryRecords: 97))
    let orders = (0..<orderCount).map { i in
        Order(
            id: "ord_\(i)", event: "evt_crash", customer: "cus_\(i % 7)", currency: .gbp,
            lines: (1...3).map { OrderLine(id: "l\($0)", ticketType: "tt_\($0)", price: 1000 + Int64($0) * 333, tax: 100) },
            tenders: [
                Tender(id: "t1", method: .card, amount: 2000, gatewayRef: "pi_\(i)"),
                Tender(id: "t2", method: .wallet, amount: 2998),  // lines: 1333 + 1666 + 1999 = 4998
            ])
    }
    let rejected = await engine.putOrders(orders)
    if let first = rejected.first { say("error put \(first.error.code.rawValue) \(first.error.message)"); exit(3) }
    // Gateway attempts a crash interrupted are due: send them before anything else (a daemon's retry
    // scheduler does the same).
    await engine.runDueAttempts()
    say("ready")
    var rng = SplitMix64(seed: seed)
    let staff = Caller.staff("crash")
    // Refund lines in a seeded random order, one refund per line.
    var work: [(Int, Int)] = []
    for i in 0..<orderCount { for l in 1...3 { work.append((i, l)) } }
    work.shuffle(using: &rng)
    for (i, l) in work {
        let orderID = "ord_\(i)"
        let line = "l\(l)"
        do throws(RefundError) {
            let refund = try await engine.createRefund(
                orderID: orderID, RefundOptions(lines: [line], method: .original, reason: "crash_test"), caller: staff)
            say("ack \(refund.id) \(orderID) \(line)")
        } catch {
            guard error.code.rawValue == "already_refunded" else { throw error }
            continue  // refunded in an earlier run
        }
    }
    say("done")
    try await engine.close()
} catch {
    say("error \(error)")
    exit(1)
}
