import Foundation
import Logging
import RefundCore
import RefundEngine
import RefundStorage
import Synchronization

/// A payment gateway for the simulation: its answer to a request depends only on the seed and the request's
/// idempotency key (never on call order, which parallel partitions make vary), and it remembers every key it
/// was sent, so the simulation can check that no money left for a refund the engine then forgot.
final class SimulationGateway: PaymentGateway {
    let seed: UInt64
    private let sent = Mutex<[String: String]>([:])
    /// Times each key was sent (an unknown outcome depends on it, so a re-send can get a definite answer).
    private let sends = Mutex<[String: Int]>([:])
    /// Keys that got a definite answer (the answer itself is a function of the seed and the key).
    private let answered = Mutex<[String: Bool]>([:])

    init(seed: UInt64) { self.seed = seed }

    /// Idempotency key → refund id, for every request ever sent.
    var keys: [String: String] { sent.withLock { $0 } }

    func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        sent.withLock { keys in for request in requests { keys[request.idempotencyKey] = request.refundID } }
        return requests.map { request in
            let count = sends.withLock { counts -> Int in
                counts[request.idempotencyKey, default: 0] += 1
                return counts[request.idempotencyKey] ?? 1
            }
            // A key that already got a definite answer gets it again (an idempotent gateway replays its stored
            // result): a re-send after a crash must find what the crashed process was told (seed 7547 drew a
            // timeout on such a re-send and left the refund pending where the crashed process had seen it
            // succeed). Before a definite answer, sometimes none (a timeout): the same key goes again later.
            let definite = answered.withLock { $0[request.idempotencyKey] ?? false }
            if !definite, StableMix.mix(seed ^ UInt64(count), request.idempotencyKey + "?") % 100 < 6 {
                return .unknown(reason: "timeout")
            }
            answered.withLock { $0[request.idempotencyKey] = true }
            let roll = StableMix.mix(seed, request.idempotencyKey) % 100
            switch roll {
            case 0..<65: return .succeeded(reference: "re_\(request.idempotencyKey)")
            case 65..<82: return .pending(reference: "re_\(request.idempotencyKey)")
            case 82..<95: return .failed(code: "try_later", retryable: true)
            default: return .failed(code: "card_expired", retryable: false)
            }
        }
    }
}

enum StableMix {
    static func mix(_ seed: UInt64, _ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return h
    }
}

/// Everything a client can observe of an engine, compared across crashes and restarts.
struct SimulationImage: Equatable {
    var states: [OrderState]
    var events: [OutboxEvent]
    var balances: [String: [String: Int64]]
    var inventory: [String: Int64]
    var attention: [String]

    static let customers = ["cus_a", "cus_b", "cus_c"]

    static func of(_ engine: Engine) async -> SimulationImage {
        var balances: [String: [String: Int64]] = [:]
        for customer in customers { balances[customer] = await engine.balances(customer: customer) }
        return SimulationImage(
            states: await engine.allOrderStates(), events: await engine.events(after: 0, limit: 1_000_000),
            balances: balances, inventory: await engine.inventoryReleased(),
            attention: await engine.attention().map(\.id).sorted())
    }

    /// Whether this image is `inDoubt` carried on by the restart: the in-doubt operation's refund was created
    /// but its gateway attempt had not been sent when the process died, and the restart sent it (same key, same
    /// instant). Every other order is identical, the in-doubt order has the same refunds (ids, amounts, lines),
    /// balances and inventory are the same, and the events only grew.
    func continues(_ inDoubt: SimulationImage) -> Bool {
        guard states.count == inDoubt.states.count, balances == inDoubt.balances, inventory == inDoubt.inventory,
            events.starts(with: inDoubt.events)
        else { return false }
        var differing = 0
        for (a, b) in zip(states, inDoubt.states) where a != b {
            differing += 1
            guard a.order == b.order, a.refunds.count == b.refunds.count,
                zip(a.refunds, b.refunds).allSatisfy({ $0.id == $1.id && $0.amount == $1.amount && $0.lines == $1.lines })
            else { return false }
        }
        return differing <= 1
    }

    /// Whether this image is `acknowledged` plus what a bulk cancellation of `event`, cut off by a crash and
    /// resumed after the restart, may add: orders of other events are identical; every order of the event keeps
    /// its refunds and gained at most one refund, made by a bulk job; events only grew.
    func continuesBulk(_ acknowledged: SimulationImage, event: String) -> Bool {
        guard states.count == acknowledged.states.count, events.starts(with: acknowledged.events) else { return false }
        for (a, b) in zip(states, acknowledged.states) where a != b {
            guard a.order == b.order, a.order.event == event, a.refunds.count <= b.refunds.count + 1,
                Array(a.refunds.prefix(b.refunds.count)).map(\.id) == b.refunds.map(\.id),
                a.refunds.count == b.refunds.count || a.refunds.last?.jobID != nil
            else { return false }
        }
        return true
    }

    /// A short description of where two images differ (for the failure message).
    func difference(from other: SimulationImage) -> String {
        var parts: [String] = []
        if states.count != other.states.count { parts.append("orders \(states.count) vs \(other.states.count)") }
        for (a, b) in zip(states, other.states) where a != b {
            if ProcessInfo.processInfo.environment["REFUND_SIM_DUMP"] != nil { parts.append("\n\(a.refunds)\nvs\n\(b.refunds)\n\(a.timeline.suffix(4))\nvs\n\(b.timeline.suffix(4))\n") }
            parts.append("order \(a.order.id): \(a.refunds.count) refunds \(a.refunds.map { "\($0.id)=\($0.status)" }) vs \(b.refunds.count) \(b.refunds.map { "\($0.id)=\($0.status)" })")
            break
        }
        if events != other.events {
            parts.append("events \(events.map(\.sequence)) vs \(other.events.map(\.sequence))")
        }
        if balances != other.balances { parts.append("balances \(balances) vs \(other.balances)") }
        if inventory != other.inventory { parts.append("inventory \(inventory) vs \(other.inventory)") }
        if attention != other.attention { parts.append("attention \(attention) vs \(other.attention)") }
        return parts.joined(separator: "; ")
    }
}

struct SimulationFailure: Error, CustomStringConvertible {
    let seed: UInt64
    let message: String
    let history: [String]
    var description: String {
        "simulation seed \(seed) failed: \(message)\nreproduce: tools/simulate.sh \(seed) 1\nhistory:\n  "
            + history.joined(separator: "\n  ")
    }
}

/// One seeded history: random operations on a durable engine over the simulated file system, with process
/// crashes at any file-system call, power losses, clean stops, snapshots, bit flips and deleted files, checking
/// after every restart that nothing acknowledged was lost and nothing was applied twice.
///
/// The model is the engine's own observable image after each acknowledged operation (`acknowledged`); an
/// operation cut off by a crash is "in doubt", and after the restart the image must be either the one before it
/// or the one the crashed process held in memory. A clean stop and restart must give the identical image.
/// Events must keep their numbers, acknowledged ones never come back, and new ones are numbered above every
/// number ever handed out. Every gateway request must belong to a refund the engine still has.
final class Simulation {
    let seed: UInt64
    private var rng: UInt64
    let fs: SimulatedFileSystem
    let clock = ManualClock(Fixtures.t0)
    let gateway: SimulationGateway
    let partitions: Int
    let fsync: FsyncPolicy
    let directory = "/sim/data"
    var engine: Engine?
    var acknowledged: SimulationImage?
    var history: [String] = []
    var orderCount = 0
    var highestEvent: UInt64 = 0
    var ackedUpTo: UInt64 = 0
    var restarts = 0
    var crashes = 0
    /// Gateway keys sent before a repair (a repair may give up refunds whose money already left: it says so).
    var forgiven = Set<String>()
    /// An acknowledgement a crash cut off: it may or may not have been logged.
    var pendingAck: UInt64?
    var controlRepaired = false
    /// The event of a bulk cancellation a crash cut off (it resumes after the restart).
    var bulkInDoubt: String?
    var bulkCrashes = 0
    /// Pauses, resumes and aborts that took effect, and those that came after the job's walk (invalid_state).
    var steers = 0
    var lateSteers = 0
    var lastBulkEvent = ""
    /// Draws for what came after the kept histories (steering bulk jobs, per-line moderation): a stream of its
    /// own, so every seed's main stream (and the regression seeds' histories) stays what it was.
    private var extra: SplitMix64

    /// Whether the operations of the second stream run (off for the regression seeds: their histories stay
    /// exactly the ones that failed).
    let newer: Bool

    /// The order ids' prefix: `ord_` for the regression seeds; otherwise drawn from the second stream, and then
    /// sometimes long. A commit batch writes each order id against the previous one's bytes: with only short ids
    /// the simulation never reached a shared prefix longer than what was left of a record, which the daemon's
    /// first bulk of answers did (and which was taken for a truncation).
    let orderPrefix: String

    init(seed: UInt64, newer: Bool = true) {
        self.seed = seed
        self.newer = newer
        rng = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        fs = SimulatedFileSystem(seed: seed)
        gateway = SimulationGateway(seed: seed)
        partitions = 2 + Int(seed % 2)
        fsync = seed % 5 == 0 ? .interval(milliseconds: 5) : .always
        extra = SplitMix64(seed: seed ^ 0x5EED_0F_57EE)
        let prefixes = ["ord_", "tenant-0042:event-2027-01-01:order-", String(repeating: "x", count: 110) + "-"]
        orderPrefix = newer ? prefixes[Int(extra.next() % 3)] : "ord_"
    }

    /// A draw from the second stream (see ``extra``).
    func extraRandom(_ bound: Int) -> Int { Int(extra.next() % UInt64(max(bound, 1))) }

    func random(_ bound: Int) -> Int {
        rng ^= rng >> 12
        rng ^= rng << 25
        rng ^= rng >> 27
        return Int((rng &* 2_685_821_657_736_338_717) >> 33) % max(bound, 1)
    }

    func fail(_ message: String) -> SimulationFailure {
        SimulationFailure(seed: seed, message: message, history: history)
    }

    func open(repair: Bool = false) async throws(RefundError) -> Engine {
        var durability = DurabilityOptions(
            directory: directory, fsync: fsync, segmentBytes: 4096, snapshotEveryRecords: 0, snapshotEveryBytes: 0,
            repair: repair, fileSystem: fs)
        // Thousands of injected fail-stops: their log lines would drown the test output.
        durability.logger = Logger(label: "simulation") { _ in SwiftLogNoOpLogHandler() }
        return try await Engine.open(
            configuration: EngineConfiguration(partitions: partitions, bulkChunkSize: 7), durability: durability,
            gateway: gateway, clock: clock)
    }

    func run(steps: Int) async throws {
        engine = try await open()
        acknowledged = await SimulationImage.of(engine!)
        for _ in 0..<steps {
            clock.advance(milliseconds: Int64(1 + random(5000)))
            // The retry scheduler's tick: whatever fell due is sent now, so that after a restart at this same
            // instant only what a crash left in flight is due.
            if let engine, await engine.runDueAttempts() > 0 {
                history.append("scheduler tick")
                try await checkEvents(engine)
                acknowledged = await SimulationImage.of(engine)
            }
            let roll = random(100)
            switch roll {
            case 0..<22: try await step("put") { (engine: Engine) async throws(RefundError) in try await self.putOrder(engine) }
            case 22..<44: try await step("refund") { (engine: Engine) async throws(RefundError) in try await self.refund(engine) }
            case 44..<52: try await step("settle") { (engine: Engine) async throws(RefundError) in try await self.settle(engine) }
            case 52..<56: try await step("retry") { (engine: Engine) async throws(RefundError) in _ = await self.dueAttempts(engine) }
            case 56..<62: try await step("snapshot") { (engine: Engine) async throws(RefundError) in try await engine.snapshot() }
            case 62..<66: try await step("ack") { (engine: Engine) async throws(RefundError) in try await self.acknowledge(engine) }
            case 66..<69: try await step("bulk") { (engine: Engine) async throws(RefundError) in try await self.bulk(engine) }
            case 69..<78: try await crashDuringNextOperation()
            case 78..<84: try await crashBetweenOperations(powerLoss: random(2) == 0)
            case 84..<92: try await cleanRestart(twice: random(3) == 0)
            case 92..<96: try await damageAndRestart()
            default: try await diskFull()
            }
        }
        try await cleanRestart(twice: true)
        try await engine?.close()
        engine = nil
    }

    // MARK: Operations

    func putOrder(_ engine: Engine) async throws(RefundError) {
        orderCount += 1
        let id = "\(orderPrefix)\(orderCount)"
        let lineCount = 1 + random(3)
        let price = Int64(1000 + 500 * random(8))
        var lines = (1...lineCount).map { OrderLine(id: "l\($0)", ticketType: "tt_\(random(2))", price: price) }
        // A holder named at checkout (designated), from the second stream.
        if newer, extraRandom(4) == 0 { lines[0].holder = "att_0" }
        let total = price * Int64(lineCount)
        let split = random(3) == 0
        let wallet = split ? total / 3 : 0
        var tenders = [Tender(id: "t1", method: .card, amount: total - wallet, gatewayRef: "pi_\(id)")]
        if split { tenders.append(Tender(id: "t2", method: .wallet, amount: wallet)) }
        let order = Order(
            id: id, event: "evt_\(random(4))", eventStartsAt: Timestamp(iso8601: "2027-01-01T19:00:00Z"),
            customer: SimulationImage.customers[random(3)], email: "\(id)@example.com", currency: .gbp,
            lines: lines, tenders: tenders)
        try await engine.putOrder(order)
    }

    func someOrder() -> String? { orderCount == 0 ? nil : "\(orderPrefix)\(1 + random(orderCount))" }

    func refund(_ engine: Engine) async throws(RefundError) {
        guard let id = someOrder() else { return }
        let method: RefundMethod = [.original, .original, .balance, .none, .offline][random(5)]
        let lines: [String]? = random(2) == 0 ? nil : ["l\(1 + random(3))"]
        let fee: CancellationFee? = random(3) == 0 ? .order(Int64(100 * random(5))) : nil
        if newer, extraRandom(8) == 0 {
            // Facts that are not money change (after refunds too): frozen, a ticket transferred or back.
            let update = OrderFactsUpdate(
                frozen: extraRandom(3) == 0 ? extraRandom(2) == 0 : nil,
                lines: [OrderFactsUpdate.Line(id: "l1", transferred: extraRandom(2) == 0)])
            history[history.count - 1] += " update \(update.summary)"
            _ = try await engine.updateOrder(orderID: id, update, caller: Fixtures.staff)
            return
        }
        if newer, extraRandom(7) == 0 {
            // A ticket moves to another holder, or back to the purchaser (nil): after refunds too.
            let line = "l\(1 + extraRandom(3))"
            switch extraRandom(4) {
            case 0, 1:
                // Asked for, pending, or a pending one decided.
                let accept = extraRandom(2) == 0
                history[history.count - 1] += " \(accept ? "accept" : "cancel") transfer of \(line)"
                _ = try await engine.decideTransfer(orderID: id, line: line, accept: accept, caller: Fixtures.staff)
            default:
                let to: String? = ["att_1", "att_2", nil][extraRandom(3)]
                let pending = extraRandom(2) == 0
                history[history.count - 1] += " transfer \(line) to \(to ?? "purchaser")\(pending ? " (pending)" : "")"
                _ = try await engine.transferTicket(orderID: id, line: line, to: to, pending: pending, caller: Fixtures.staff)
            }
            return
        }
        if newer, extraRandom(6) == 0 {
            // An outcome per line: a cancellation without money and a refund, logged together, both or neither.
            var outcomes: [String: Engine.ModerationOutcome] = [:]
            for line in 1...3 where extraRandom(3) != 0 {
                outcomes["l\(line)"] = extraRandom(2) == 0 ? .invalidateRefund : .invalidateNoRefund
            }
            history[history.count - 1] += " moderate \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.rawValue)" })"
            _ = try await engine.moderate(orderID: id, outcomes: outcomes, note: "sim", caller: Fixtures.staff)
            return
        }
        _ = try await engine.createRefund(
            orderID: id, RefundOptions(lines: lines, method: method, fee: fee, reason: "customer_request"),
            caller: Fixtures.staff)
    }

    func settle(_ engine: Engine) async throws(RefundError) {
        guard let id = someOrder() else { return }
        let state = try await engine.orderState(id)
        for refund in state.refunds {
            for transaction in refund.transactions where transaction.status == .pending {
                guard let tender = transaction.tender else { continue }
                // Name the attempt (sometimes an older one: a late answer, recorded, never applied to the new one).
                let attempt: Int? = random(3) == 0 ? nil : max(1, transaction.attempts - random(2))
                _ = try await engine.settle(
                    refundID: refund.id, tender: tender, attempt: attempt, succeeded: random(4) != 0,
                    reference: "late_\(refund.id)", failureCode: "declined", retryable: random(2) == 0)
                return
            }
        }
    }

    func dueAttempts(_ engine: Engine) async -> Int {
        clock.advance(milliseconds: 3_600_000)
        return await engine.runDueAttempts()
    }

    func acknowledge(_ engine: Engine) async throws(RefundError) {
        let events = await engine.events(after: ackedUpTo, limit: 1_000_000)
        guard !events.isEmpty else { return }
        let upTo = events[random(events.count)].sequence
        pendingAck = upTo
        try await engine.acknowledgeEvents(upTo: upTo)
        ackedUpTo = max(ackedUpTo, upTo)
        pendingAck = nil
    }

    /// A bulk cancellation: run to the end, or steered while it runs (paused and resumed, or aborted, with or
    /// without a pause first). A steer that comes too late (the job already processed every order) is refused
    /// with invalid_state and changes nothing.
    func bulk(_ engine: Engine) async throws(RefundError) {
        lastBulkEvent = "evt_\(random(4))"
        let request = BulkCancelRequest(
            events: [lastBulkEvent],
            options: RefundOptions(method: .original, fee: .order(Int64(50 * random(3))), reason: "event_cancelled"),
            dryRun: random(4) == 0)
        let steer = newer ? extraRandom(6) : 6
        guard steer <= 1, !request.dryRun else {
            _ = try await engine.runBulkCancellation(request, caller: Fixtures.staff)
            return
        }
        let jobID = try await engine.startBulkCancellation(request, caller: Fixtures.staff)
        func tolerant(_ body: () async throws(RefundError) -> BulkJobStatus) async throws(RefundError) {
            do throws(RefundError) {
                _ = try await body()
                steers += 1
            } catch where error.code == .invalidState {
                lateSteers += 1
            }
        }
        let pauseFirst = steer == 0 || extraRandom(2) == 0
        if pauseFirst {
            history[history.count - 1] += " pause"
            try await tolerant { () throws(RefundError) in try await engine.pauseBulk(jobID: jobID, caller: Fixtures.staff) }
        }
        if steer == 0 {
            history[history.count - 1] += " resume"
            try await tolerant { () throws(RefundError) in try await engine.resumeBulk(jobID: jobID, caller: Fixtures.staff) }
        } else {
            history[history.count - 1] += " abort"
            try await tolerant { () throws(RefundError) in try await engine.abortBulk(jobID: jobID, caller: Fixtures.staff) }
        }
        for _ in 0..<5_000 {
            if try await jobEventsAreOut(engine, jobID) { return }
            if let failure = engine.failure { throw failure }
            try? await Task.sleep(for: .milliseconds(1))
        }
        throw RefundError(.engineStopped, "\(jobID) did not finish its walk")
    }

    // MARK: Steps and checks

    /// Runs one operation. A rejection (a rule said no) is fine and changes nothing; success must leave new
    /// events numbered above all before; then the image becomes the acknowledged one.
    func step(_ name: String, _ body: (Engine) async throws(RefundError) -> Void) async throws {
        guard let engine else { return }
        history.append(name)
        do throws(RefundError) {
            try await body(engine)
        } catch where error.code == .engineStopped {
            throw fail("\(name): engine stopped without a fault: \(error.message)")
        } catch {
            history[history.count - 1] += " → \(error.code.rawValue)"
        }
        try await checkEvents(engine)
        acknowledged = await SimulationImage.of(engine)
    }

    /// `REFUND_SIM_TRACE=1` prints the outbox after every step: what a failure's history needs beside it.
    static let tracing = ProcessInfo.processInfo.environment["REFUND_SIM_TRACE"] != nil

    func checkEvents(_ engine: Engine) async throws {
        let fresh = await engine.events(after: highestEvent, limit: 1_000_000)
        let all = await engine.events(after: 0, limit: 1_000_000)
        let numbers = all.map(\.sequence)
        if Self.tracing {
            let listed = all.map { "\($0.sequence):\($0.kind.rawValue):\($0.orderID ?? "-")" }
            print("seed \(seed) after \(history.last ?? "start"): events \(listed)")
        }
        guard numbers == numbers.sorted(), Set(numbers).count == numbers.count else {
            throw fail("event numbers are not unique and increasing: \(numbers)")
        }
        if let low = all.first?.sequence, low <= ackedUpTo {
            throw fail("acknowledged event \(low) (ack up to \(ackedUpTo)) is delivered again")
        }
        highestEvent = max(highestEvent, fresh.last?.sequence ?? 0)
    }

    /// The process dies at a random file-system call during the next operation.
    func crashDuringNextOperation() async throws {
        guard let engine else { return }
        crashes += 1
        let after = random(40)
        fs.crash(after: after)
        let name = ["put", "refund", "settle", "snapshot", "ack", "bulk"][random(6)]
        history.append("crash after \(after) calls during \(name)")
        var threw = false
        do throws(RefundError) {
            switch name {
            case "put": try await putOrder(engine)
            case "refund": try await refund(engine)
            case "settle": try await settle(engine)
            case "snapshot": try await engine.snapshot()
            case "bulk": try await bulk(engine)
            default: try await acknowledge(engine)
            }
        } catch {
            threw = true
        }
        var inMemory = await SimulationImage.of(engine)
        if threw, let upTo = pendingAck, var acked = acknowledged {
            // The acknowledgement is dropped from memory only once logged: in doubt is "logged".
            acked.events.removeAll { $0.sequence <= upTo }
            inMemory = acked
        }
        if name == "bulk", fs.hasCrashed || threw {
            bulkInDoubt = lastBulkEvent
            bulkCrashes += 1
        }
        if !threw, !fs.hasCrashed {
            // The operation finished before the fatal call: it was acknowledged.
            try await checkEvents(engine)
            acknowledged = inMemory
        }
        fs.crashNow()
        try await restart(powerLoss: false, inDoubt: inMemory)
    }

    func crashBetweenOperations(powerLoss: Bool) async throws {
        crashes += 1
        history.append(powerLoss ? "power loss" : "kill -9")
        fs.crashNow()
        try await restart(powerLoss: powerLoss, inDoubt: nil)
    }

    /// Kills the engine, restarts the machine and reopens; the image must be the acknowledged one (or the
    /// in-doubt one). Then `runDueAttempts` re-sends what was in flight under the same keys.
    func restart(powerLoss: Bool, inDoubt: SimulationImage?) async throws {
        engine?.kill()
        engine = nil
        fs.restart(powerLoss: powerLoss)
        restarts += 1
        let reopened: Engine
        do throws(RefundError) {
            reopened = try await open()
        } catch {
            throw fail("reopen after \(powerLoss ? "power loss" : "crash") refused: \(error)")
        }
        engine = reopened
        await awaitResumedJobs(reopened)
        // Attempts that were in flight go out again, at the same instant, under the same keys.
        await reopened.runDueAttempts()
        let image = await SimulationImage.of(reopened)
        try checkGatewayKeys(image)
        // After a control-log repair gave up acknowledgements, an older snapshot may bring back events: compare
        // everything but the events then.
        func neutral(_ candidate: SimulationImage?) -> SimulationImage? {
            guard controlRepaired, var copy = candidate else { return candidate }
            copy.events = image.events
            return copy
        }
        let expected = neutral(acknowledged)
        let doubted = neutral(inDoubt)
        let lossAllowed = powerLoss && fsync != .always
        var continued = doubted.map { image.continues($0) } ?? false
        if let event = bulkInDoubt, let expected {
            continued = continued || image.continuesBulk(expected, event: event)
            bulkInDoubt = nil
        }
        if let acknowledged = expected, image != acknowledged, image != doubted, !continued, !lossAllowed {
            throw fail(
                "after restart the state is neither the acknowledged one nor the in-doubt one: \(image.difference(from: acknowledged))"
                    + (inDoubt.map { " | in doubt: \(image.difference(from: $0))" } ?? ""))
        }
        if image != acknowledged { history.append("  (in-doubt operation \(image == inDoubt ? "kept" : "lost"))") }
        if let upTo = pendingAck, image == inDoubt { ackedUpTo = max(ackedUpTo, upTo) }
        pendingAck = nil
        // Events: numbers acknowledged stay gone, and anything new is numbered above all before.
        highestEvent = max(highestEvent, image.events.last?.sequence ?? 0)
        try await checkEvents(reopened)
        acknowledged = image
    }

    /// Whether job `jobID` is done as far as its events go: its summary is out (published after the job's final
    /// record, when its walk ended) and, when nothing of it is pending at the gateway, its last update too
    /// (published right after the summary, or once the change that completed the job is fsynced). Acknowledging
    /// an image before that would let a crash right after find an event that no image has: seeds 601974 and
    /// 610379 did, under load (the summary and the update are two publications).
    func jobEventsAreOut(_ engine: Engine, _ jobID: String) async throws(RefundError) -> Bool {
        let events = await engine.events(after: 0, limit: 1_000_000)
        guard events.contains(where: { $0.jobID == jobID && $0.kind == .bulkSummary }) else { return false }
        // Pending refunds: the last update comes with the settlement that ends them, in a later step.
        if try engine.bulkStatus(jobID: jobID).pending > 0 { return true }
        return events.contains {
            $0.jobID == jobID && $0.kind == .bulkUpdate
                && ($0.text?.hasSuffix("state=completed") == true || $0.text?.hasSuffix("state=aborted") == true)
        }
    }

    /// Bulk jobs a crash (or a repair) interrupted resume in the background; wait for them to finish.
    func awaitResumedJobs(_ engine: Engine) async {
        for jobID in engine.recoverySummary?.resumedJobs ?? [] {
            for _ in 0..<2000 {
                if (try? await jobEventsAreOut(engine, jobID)) != false { break }
                if engine.failure != nil { break }
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// Every idempotency key the gateway saw belongs to a refund the engine still holds (money never leaves
    /// for a refund a crash took back).
    func checkGatewayKeys(_ image: SimulationImage) throws {
        let refunds = Set(image.states.flatMap { $0.refunds.map(\.id) })
        for (key, refundID) in gateway.keys where !refunds.contains(refundID) && !forgiven.contains(key) {
            throw fail("gateway was sent \(key) for \(refundID), which the engine no longer has")
        }
    }

    /// A clean stop and restart (twice in a row, sometimes: the restart-cycle double apply) gives the same image.
    func cleanRestart(twice: Bool) async throws {
        guard let engine else { return }
        history.append(twice ? "clean restart ×2" : "clean restart")
        do throws(RefundError) {
            try await engine.close()
        } catch {
            throw fail("clean close failed: \(error)")
        }
        self.engine = nil
        for _ in 0..<(twice ? 2 : 1) {
            let reopened: Engine
            do throws(RefundError) {
                reopened = try await open()
            } catch {
                throw fail("reopen after a clean close refused: \(error)")
            }
            await awaitResumedJobs(reopened)
            var image = await SimulationImage.of(reopened)
            // After a control-log repair gave up acknowledgements, an older snapshot may bring back events.
            if controlRepaired, let acknowledged { image.events = acknowledged.events }
            if let acknowledged, image != acknowledged {
                throw fail("clean restart changed the state: \(image.difference(from: acknowledged))")
            }
            self.engine = reopened
            if twice, self.engine != nil {
                do throws(RefundError) { try await reopened.close() } catch { throw fail("second close failed: \(error)") }
            }
        }
        if twice { self.engine = try await open() }
        restarts += 1
    }

    /// Flips a bit in, or deletes, a random log or snapshot file, then restarts: the engine either refuses
    /// (`data_corrupt` / `data_missing`) or, if the damage hit nothing it needs, comes back identical. A repair
    /// then always opens; the model takes the repaired state from there.
    func damageAndRestart() async throws {
        guard let engine else { return }
        do throws(RefundError) { try await engine.close() } catch { throw fail("close before damage failed: \(error)") }
        self.engine = nil
        let files = fs.allFiles().filter { $0.hasSuffix(".log") || $0.hasSuffix(".snap") || $0.hasSuffix(".manifest") || $0.hasSuffix("engine.run") }
        guard !files.isEmpty else {
            self.engine = try await open()
            return
        }
        let victim = files[random(files.count)]
        let delete = random(3) == 0
        if delete {
            fs.delete(victim)
        } else {
            let size = fs.size(victim)
            fs.flipBit(victim, byteOffset: random(max(size, 1)), bit: random(8))
        }
        history.append("\(delete ? "delete" : "flip a bit in") \(victim)")
        var opened: Engine?
        do throws(RefundError) {
            opened = try await open()
        } catch where error.code == .dataCorrupt || error.code == .dataMissing {
            history.append("  refused: \(error.code.rawValue)")
        } catch {
            throw fail("damage to \(victim) gave \(error) (expected data_corrupt, data_missing, or the same state)")
        }
        if let reopened = opened {
            var image = await SimulationImage.of(reopened)
            if controlRepaired, let acknowledged {
                // A repair of the control log gave up acknowledgements: an older snapshot may hold events they had
                // dropped. Only the events may differ.
                image.events = acknowledged.events
            }
            if let acknowledged, image != acknowledged {
                throw fail("damage to \(victim) was not detected and changed the state: \(image.difference(from: acknowledged))")
            }
            self.engine = reopened
            return
        }
        let repaired: Engine
        do throws(RefundError) {
            repaired = try await open(repair: true)
        } catch {
            throw fail("repair after damage to \(victim) failed: \(error)")
        }
        guard let summary = repaired.recoverySummary,
            !(summary.repairs.isEmpty && summary.missing.isEmpty && summary.skippedSnapshots.isEmpty
                && summary.tornTails.isEmpty)
        else {
            throw fail("a repair after damage to \(victim) reported nothing")
        }
        history.append("  repaired: \(summary.repairs + summary.missing)")
        forgiven.formUnion(gateway.keys.keys)
        if victim.contains("/control/") { controlRepaired = true }
        // A repair may give up acknowledgements too: events at or below them can come back.
        ackedUpTo = 0
        await awaitResumedJobs(repaired)
        self.engine = repaired
        await repaired.runDueAttempts()
        acknowledged = await SimulationImage.of(repaired)
        highestEvent = max(highestEvent, acknowledged?.events.last?.sequence ?? 0)
        // The repaired directory must itself survive a clean restart unchanged.
        try await cleanRestart(twice: false)
    }

    /// The next write fails with ENOSPC: the engine must stop (and say so), and a restart recovers.
    func diskFull() async throws {
        guard let engine else { return }
        history.append("disk full")
        fs.failNext(.write, errno: ENOSPC)
        var inDoubt: SimulationImage?
        do throws(RefundError) {
            try await putOrder(engine)
            try await refund(engine)
        } catch {
            inDoubt = await SimulationImage.of(engine)
        }
        if inDoubt == nil {
            acknowledged = await SimulationImage.of(engine)
            try await checkEvents(engine)
        } else {
            guard engine.failure != nil else { throw fail("a failed write did not stop the engine visibly (failure is nil)") }
        }
        fs.crashNow()
        try await restart(powerLoss: false, inDoubt: inDoubt)
    }
}
