import Foundation
import Logging
import RefundCore
import RefundEngine
import RefundStorage
import Synchronization
import Testing

/// The model-based test: long random sequences of operations against the real (durable) engine and the
/// independent reference model of `MoneyModel.swift`, compared after every step.
///
/// Every refund must be exactly what the model plans (amount, fee, tax, booking fee, lines, tender shares), and
/// every rejection one the model allows, changing nothing. After every step: per tender, what its transactions
/// claim equals the model's and never exceeds what it paid, and the gateway was never asked for more; every line
/// that left the order has exactly one refund; the order's totals are the model's and add up; balances are the
/// model's; settled transactions never change and failed ones come back only by a retry; every bulk job's totals
/// are the sum of its refunds by transaction status. A clean restart under a different clock and a kill must
/// give the byte-identical state and event stream.
///
/// `swift test` runs 2,000 sequences; `REFUND_MODEL_SEED`, `REFUND_MODEL_COUNT` and `REFUND_MODEL_STEPS` run
/// more (`tools/model.sh SEED COUNT [STEPS]`). A failure prints its seed, the shortest failing prefix of its
/// history and the history itself.
@Suite struct ModelBasedTests {
    static let environment = ProcessInfo.processInfo.environment
    static let firstSeed = UInt64(environment["REFUND_MODEL_SEED"] ?? "") ?? 1
    static let count = Int(environment["REFUND_MODEL_COUNT"] ?? "") ?? 2000
    static let steps = Int(environment["REFUND_MODEL_STEPS"] ?? "") ?? 30

    @Test func randomSequencesMatchTheModel() async throws {
        var failures: [String] = []
        var totals = ModelRun.Counts()
        for seed in Self.firstSeed..<(Self.firstSeed + UInt64(Self.count)) {
            let run = ModelRun(seed: seed)
            do {
                try await run.run(steps: Self.steps)
                totals.add(run.counts)
            } catch {
                failures.append(await ModelRun.shrink(seed: seed, steps: Self.steps, error))
                if failures.count >= 3 { break }
            }
        }
        print(
            "model: \(Self.count) sequences from \(Self.firstSeed), \(Self.steps) steps each: \(totals.refunds) refunds, \(totals.rejections) rejections matched, \(totals.settlements) settlements, \(totals.bulkRefunds) bulk refunds, \(totals.restarts) restarts, \(totals.kills) kills; \(failures.count) failed"
        )
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
        // The sequences must reach what they claim to test: a model that rejects everything would pass.
        if failures.isEmpty, Self.count >= 500 {
            #expect(totals.refunds > Self.count && totals.rejections > Self.count / 4 && totals.bulkRefunds > 0)
            #expect(totals.settlements > Self.count / 4 && totals.restarts > Self.count / 8 && totals.kills > Self.count / 8)
        }
    }

    /// The model's own allocation against the contract's worked example (docs/money.md), so that the model is
    /// checked against the contract and not only against the engine.
    @Test func theModelAgreesWithTheContractExample() {
        #expect(ModelMath.split(4135, over: [3000, 1884]) == [2540, 1595])
        #expect(ModelMath.split(750, over: [4135, 500]) == [669, 81])
        #expect(ModelMath.split(500, over: [1099, 2350, 3125, 999, 1427]) == [61, 131, 174, 55, 79])
        let order = ModelOrder(
            id: "ord_1", event: "evt_1", customer: "cus_9", bookingFee: 150,
            lines: [ModelLine(id: "l1", price: 5000, discount: 500, tax: 750, processingFee: 135, platformFee: 99)],
            tenders: [ModelTender(id: "t1", method: .card, amount: 3000), ModelTender(id: "t2", method: .wallet, amount: 1884)])
        guard case .refund(let refund, let take, let credit, _, _) = order.plan(
            RefundOptions(method: .original, fee: .order(500), reason: "x"), pending: false)
        else {
            Issue.record("the contract example refunds")
            return
        }
        #expect(refund.amount == 4135 && refund.feeRetained == 500 && refund.tax == 669 && take == [2540, 1595])
        #expect(credit == 1595)
    }
}

/// A gateway whose answer is a function of the seed, the idempotency key and how often that key was sent:
/// succeeded, accepted (answered later by `settle`), failed (retryable or not) or unknown. Order-independent, so
/// a sequence is reproducible whatever order the partitions call it in. Records every request.
final class ModelGateway: PaymentGateway, Sendable {
    let seed: UInt64
    struct Sent {
        var requests: [String: GatewayRequest] = [:]
        var calls: [String: Int] = [:]
        var conflicts: [String] = []
    }
    let sent = Mutex(Sent())

    init(seed: UInt64) { self.seed = seed }

    func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        sent.withLock { sent in
            requests.map { request in
                let key = request.idempotencyKey
                if let earlier = sent.requests[key], earlier.amount != request.amount {
                    sent.conflicts.append("\(key): \(earlier.amount) then \(request.amount)")
                }
                sent.requests[key] = request
                sent.calls[key, default: 0] += 1
                var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
                for byte in "\(key)#\(sent.calls[key] ?? 0)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
                switch hash % 100 {
                case 0..<45: return .succeeded(reference: "re_\(key)")
                case 45..<65: return .pending(reference: "acc_\(key)")
                case 65..<78: return .failed(code: "expired_card", retryable: false)
                case 78..<92: return .failed(code: "try_later", retryable: true)
                default: return .unknown(reason: "timeout")
                }
            }
        }
    }
}

/// One seeded sequence.
final class ModelRun {
    struct Counts {
        var refunds = 0
        var rejections = 0
        var settlements = 0
        var bulkRefunds = 0
        var restarts = 0
        var kills = 0

        mutating func add(_ other: Counts) {
            refunds += other.refunds
            rejections += other.rejections
            settlements += other.settlements
            bulkRefunds += other.bulkRefunds
            restarts += other.restarts
            kills += other.kills
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var seed: UInt64
        var message: String
        var history: [String]
        var description: String {
            "model seed \(seed): \(message)\nreproduce: tools/model.sh \(seed) 1\nhistory:\n  " + history.joined(separator: "\n  ")
        }
    }

    let seed: UInt64
    private var rng: UInt64
    let fs: SimulatedFileSystem
    var clock = ManualClock(Fixtures.t0)
    let gateway: ModelGateway
    var engine: Engine?
    var history: [String] = []
    var counts = Counts()
    var orderIDs: [String] = []
    var orders: [String: ModelOrder] = [:]
    var balances: [String: Int64] = [:]
    var jobs: [String] = []
    var requests: [(id: String, order: String)] = []
    /// Per order: idempotency key → (options without the key, refund id).
    var keys: [String: [String: (RefundOptions, String)]] = [:]
    /// The last seen status of every transaction ("refund id#index"), to check the moves it makes.
    var statuses: [String: TransactionStatus] = [:]
    /// Refunds whose failed transactions may come back to pending in this step (a retry of them).
    var retrying = Set<String>()
    static let customers = ["cus_a", "cus_b", "cus_c"]

    init(seed: UInt64) {
        self.seed = seed
        rng = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        fs = SimulatedFileSystem(seed: seed)
        gateway = ModelGateway(seed: seed)
    }

    func random(_ bound: Int) -> Int {
        rng ^= rng >> 12
        rng ^= rng << 25
        rng ^= rng >> 27
        return Int((rng &* 2_685_821_657_736_338_717) >> 33) % max(bound, 1)
    }

    func chance(_ percent: Int) -> Bool { random(100) < percent }

    func fail(_ message: String) -> Failure { Failure(seed: seed, message: message, history: history) }

    /// An engine call's answer as a value, so that the checks after it can throw the test's own failure.
    func outcome<T>(_ body: () async throws(RefundError) -> T) async -> Result<T, RefundError> {
        do throws(RefundError) { return .success(try await body()) } catch { return .failure(error) }
    }

    func open() async throws -> Engine {
        var durability = DurabilityOptions(
            directory: "/model", segmentBytes: 8192, snapshotEveryRecords: 0, snapshotEveryBytes: 0, fileSystem: fs)
        durability.logger = Logger(label: "model") { _ in SwiftLogNoOpLogHandler() }
        return try await Engine.open(
            configuration: EngineConfiguration(partitions: 2, bulkChunkSize: 3), durability: durability,
            gateway: gateway, clock: clock)
    }

    /// Runs the sequence; on a failure, finds the shortest prefix of it that fails too.
    static func shrink(seed: UInt64, steps: Int, _ error: any Error) async -> String {
        var shortest = steps
        for length in 1..<steps {
            do {
                try await ModelRun(seed: seed).run(steps: length)
            } catch {
                shortest = length
                break
            }
        }
        return "\(error)\nshortest failing prefix: \(shortest) of \(steps) steps (REFUND_MODEL_STEPS=\(shortest))"
    }

    func run(steps: Int) async throws {
        engine = try await open()
        for _ in 0..<steps {
            clock.advance(milliseconds: Int64(1 + random(60_000)))
            let roll = random(100)
            switch roll {
            case 0..<16: try await put()
            case 16..<40: try await refund()
            case 40..<44: try await preview()
            case 44..<56: try await settle()
            case 56..<61: try await retry()
            case 61..<65: try await recover()
            case 65..<70: try await scheduler()
            case 70..<74: try await dispute()
            case 74..<79: try await request()
            case 79..<84: try await bulk()
            case 84..<86: try await snapshot()
            case 86..<93: try await restart()
            default: try await kill()
            }
            try await check()
        }
        try await engine?.close()
        engine = nil
    }

    // MARK: Operations

    func put() async throws {
        guard let engine else { return }
        let id = "ord_\(orderIDs.count + 1)"
        var lines: [ModelLine] = []
        for n in 1...(1 + random(4)) {
            // Equal prices often: equal weights are where the allocation's tie rule decides.
            let price = chance(50) ? [999, 1500, 2500, 5000][random(4)] : Int64(100 * (1 + random(100)) + random(100))
            let discount = chance(20) ? Int64(random(Int(price / 2) + 1)) : 0
            let tax = chance(40) ? Int64(random(Int((price - discount) / 4) + 1)) : 0
            lines.append(
                ModelLine(
                    id: "l\(n)", price: price, discount: discount, tax: tax,
                    processingFee: chance(50) ? Int64(random(300)) : 0, platformFee: chance(30) ? Int64(random(200)) : 0))
        }
        let booking: Int64 = chance(40) ? Int64(random(400)) : 0
        let total = lines.reduce(0) { $0 + $1.value } + booking
        let customer: String? = chance(85) ? Self.customers[random(Self.customers.count)] : nil
        var tenders: [ModelTender] = []
        let layout = random(5)
        switch layout {
        case 0 where customer != nil:
            let wallet = chance(30) ? total / 2 : Int64(random(Int(total) + 1))
            tenders = [ModelTender(id: "t1", method: .card, amount: total - wallet), ModelTender(id: "t2", method: .wallet, amount: wallet)]
        case 1:
            let cash = chance(30) ? total / 2 : Int64(random(Int(total) + 1))
            tenders = [ModelTender(id: "t1", method: .card, amount: total - cash), ModelTender(id: "t2", method: .cash, amount: cash)]
        case 2 where customer != nil:
            tenders = [ModelTender(id: "t1", method: .wallet, amount: total)]
        default:
            tenders = [ModelTender(id: "t1", method: .card, amount: total)]
        }
        if tenders.count > 1 { tenders.removeAll { $0.amount == 0 } }
        let model = ModelOrder(
            id: id, event: "evt_\(random(3))", customer: customer, bookingFee: booking, lines: lines, tenders: tenders)
        let order = Order(
            id: id, event: model.event, eventStartsAt: Timestamp(iso8601: "2027-06-01T19:00:00Z"), customer: customer,
            email: "\(id)@example.com", currency: .gbp, bookingFee: booking,
            lines: lines.map {
                OrderLine(
                    id: $0.id, kind: random(4) == 0 ? .product : .ticket, ticketType: "tt_1", price: $0.price,
                    discount: $0.discount, tax: $0.tax, processingFee: $0.processingFee, platformFee: $0.platformFee)
            },
            tenders: tenders.map {
                Tender(id: $0.id, method: $0.method, amount: $0.amount, gatewayRef: $0.method == .card ? "pi_\(id)" : nil)
            })
        history.append("put \(id) \(model.event) \(customer ?? "box office") lines \(lines.map { "\($0.id):\($0.price)-\($0.discount)+\($0.processingFee)+\($0.platformFee) tax \($0.tax)" }) booking \(booking) tenders \(tenders.map { "\($0.method.rawValue) \($0.amount)" })")
        do throws(RefundError) {
            _ = try await engine.putOrder(order)
        } catch {
            throw fail("put \(id) refused: \(error.code.rawValue) \(error.message)")
        }
        orderIDs.append(id)
        orders[id] = model
        for tender in tenders where tender.method == .wallet {
            if let customer { balances[customer, default: 0] -= tender.amount }
        }
    }

    func someOrder() -> String? { orderIDs.isEmpty ? nil : orderIDs[random(orderIDs.count)] }

    func randomOptions(for model: ModelOrder, bulk: Bool = false) -> RefundOptions {
        let method: RefundMethod = bulk ? .original : [.original, .original, .original, .offline, .balance, .none][random(6)]
        var lines: [String]? = nil
        if !bulk, chance(45) {
            let ids = model.lines.map(\.id).filter { _ in chance(50) }
            lines = ids.isEmpty ? [model.lines[random(model.lines.count)].id] : ids
            if chance(5) { lines?.append("l9") }
        }
        var fee: CancellationFee? = nil
        if method != .none || chance(10) {
            switch random(bulk ? 3 : 5) {
            case 0: fee = .order(Int64(random(800)))
            case 1: fee = .each(Int64(random(300)))
            case 2 where !bulk:
                let line = (lines ?? model.lines.map(\.id)).first ?? "l1"
                fee = .perLine([line: Int64(random(600))])
            default: fee = nil
            }
        }
        var options = RefundOptions(
            lines: lines, method: method, fee: fee, includeProcessingFees: chance(70), includePlatformFees: chance(30),
            includeBookingFee: chance(50), policy: chance(15) ? .full : .standard, reason: "customer_request")
        if !bulk, chance(20) { options.idempotencyKey = "key_\(random(3))" }
        return options
    }

    func describe(_ options: RefundOptions) -> String {
        var parts = [options.method.rawValue]
        if let lines = options.lines { parts.append("lines \(lines)") }
        if let fee = options.fee { parts.append("fee \(fee)") }
        parts.append("proc \(options.includeProcessingFees) plat \(options.includePlatformFees) booking \(options.includeBookingFee)")
        if options.policy == .full { parts.append("full") }
        if let key = options.idempotencyKey { parts.append("key \(key)") }
        return parts.joined(separator: " ")
    }

    func refund() async throws {
        guard let engine, let id = someOrder(), let model = orders[id] else { return }
        let options = randomOptions(for: model)
        history.append("refund \(id) \(describe(options))")
        if let key = options.idempotencyKey, let (earlier, refundID) = keys[id]?[key] {
            guard earlier == options.withoutIdempotencyKey else { return }  // a different request under one key
            let before = await engine.canonicalHash()
            switch await outcome({ () async throws(RefundError) in try await engine.createRefund(orderID: id, options, caller: Fixtures.staff) }) {
            case .success(let refund):
                guard refund.id == refundID else { throw fail("a repeated key made refund \(refund.id), not \(refundID)") }
            case .failure(let error):
                throw fail("a repeated key was refused: \(error.code.rawValue) \(error.message)")
            }
            guard await engine.canonicalHash() == before else { throw fail("a repeated key changed the state") }
            history[history.count - 1] += " → repeat of \(refundID)"
            return
        }
        try await create(orderID: id, options) { (engine: Engine) async throws(RefundError) -> Refund in
            try await engine.createRefund(orderID: id, options, caller: Fixtures.staff)
        }
        if let key = options.idempotencyKey, let last = orders[id]?.refunds.last, history.last?.contains("→ rf") == true {
            keys[id, default: [:]][key] = (options.withoutIdempotencyKey, last.id)
        }
    }

    /// Runs one refund-creating call and compares it with the model's plan.
    func create(
        orderID id: String, _ options: RefundOptions, _ body: (Engine) async throws(RefundError) -> Refund
    ) async throws {
        guard let engine, let model = orders[id] else { return }
        let state = try await engine.orderState(id)
        let verdict = model.plan(options, pending: state.hasPendingTransaction)
        let before = await engine.canonicalHash()
        let made: Refund
        do throws(RefundError) {
            made = try await body(engine)
        } catch {
            guard case .rejected(let allowed) = verdict, allowed.contains(error.code.rawValue) else {
                throw fail("engine refused with \(error.code.rawValue) (\(error.message)); the model expected \(verdict)")
            }
            guard await engine.canonicalHash() == before else { throw fail("a refused refund changed the state") }
            history[history.count - 1] += " → \(error.code.rawValue)"
            counts.rejections += 1
            return
        }
        guard case .refund(var expected, let take, let credit, let removed, let cancels) = verdict else {
            throw fail("engine made refund \(made.id) (amount \(made.amount)); the model expected \(verdict)")
        }
        expected.id = made.id
        expected.jobID = made.jobID
        try compare(made, expected)
        orders[id]?.apply(expected, tenderTake: take, removed: removed)
        for index in removed where cancels { orders[id]?.lines[index].cancelled = true }
        if credit > 0, let customer = model.customer { balances[customer, default: 0] += credit }
        history[history.count - 1] += " → \(made.id) amount \(made.amount) fee \(made.feeRetained) \(made.transactions.map { "\($0.tender ?? "balance") \($0.amount) \($0.status.rawValue)" })"
        counts.refunds += 1
    }

    func compare(_ refund: Refund, _ expected: ModelRefund) throws {
        let actual = ModelRefund(
            id: refund.id, method: refund.method, amount: refund.amount, feeRetained: refund.feeRetained, tax: refund.tax,
            bookingFee: refund.bookingFee,
            lines: refund.lines.map { ModelRefundLine(line: $0.line, amount: $0.amount, fee: $0.feeRetained, tax: $0.tax) },
            transactions: refund.transactions.map { ModelTransaction(tender: $0.tender, amount: $0.amount) },
            jobID: refund.jobID)
        guard actual == expected else { throw fail("refund \(refund.id) is\n  \(actual)\nthe model expected\n  \(expected)") }
    }

    func preview() async throws {
        guard let engine, let id = someOrder(), let model = orders[id] else { return }
        var options = randomOptions(for: model)
        options.idempotencyKey = nil
        history.append("preview \(id) \(describe(options))")
        let state = try await engine.orderState(id)
        let verdict = model.plan(options, pending: state.hasPendingTransaction)
        let before = await engine.canonicalHash()
        switch await outcome({ () async throws(RefundError) in try await engine.preview(orderID: id, options, caller: Fixtures.staff) }) {
        case .success(let preview):
            switch verdict {
            case .refund(let expected, _, _, _, _):
                guard preview.refundable, preview.amount == expected.amount, preview.feeRetained == expected.feeRetained,
                    preview.tax == expected.tax, preview.bookingFee == expected.bookingFee,
                    preview.tenders.map({ ModelTransaction(tender: $0.tender, amount: $0.amount) }) == expected.transactions
                else { throw fail("preview \(preview) differs from the model's \(expected)") }
            case .rejected(let codes):
                // A preview answers "not refundable" for blocks; only malformed options are errors. A balance
                // refund of nothing is refused when made, but the preview can only show its zero amount.
                guard !preview.refundable || codes == ["method_not_available"] else {
                    throw fail("preview says refundable (\(preview.amount)); the model expected \(codes)")
                }
            }
        case .failure(let error):
            guard case .rejected(let codes) = verdict, codes.contains(error.code.rawValue) else {
                throw fail("preview refused with \(error.code.rawValue); the model expected \(verdict)")
            }
        }
        guard await engine.canonicalHash() == before else { throw fail("a preview changed the state") }
    }

    func pendingTransactions() async throws -> [(order: String, refund: Refund, index: Int)] {
        guard let engine else { return [] }
        var found: [(String, Refund, Int)] = []
        for id in orderIDs {
            for refund in try await engine.orderState(id).refunds {
                for (index, transaction) in refund.transactions.enumerated()
                where transaction.status == .pending && transaction.tender != nil {
                    found.append((id, refund, index))
                }
            }
        }
        return found
    }

    func settle() async throws {
        guard let engine else { return }
        let pending = try await pendingTransactions()
        var target: (refund: Refund, index: Int)?
        if let pick = pending.isEmpty ? nil : pending[random(pending.count)] {
            target = (pick.refund, pick.index)
        } else if let id = someOrder(), let refund = try await engine.orderState(id).refunds.last,
            let index = refund.transactions.firstIndex(where: { $0.tender != nil })
        {
            target = (refund, index)  // a duplicate answer for something already settled
        }
        guard let (refund, index) = target, let tender = refund.transactions[index].tender else { return }
        let transaction = refund.transactions[index]
        let attempts = max(transaction.attempts, 1)
        let attempt: Int? = chance(20) ? nil : (chance(25) && attempts > 1 ? attempts - 1 : attempts)
        let succeeded = chance(65)
        history.append(
            "settle \(refund.id) \(tender) attempt \(attempt.map(String.init) ?? "unnamed") of \(attempts) \(succeeded ? "succeeded" : "failed") (was \(transaction.status.rawValue))")
        let late = attempt != nil && attempt! < attempts
        do throws(RefundError) {
            _ = try await engine.settle(
                refundID: refund.id, tender: tender, attempt: attempt, succeeded: succeeded, reference: "st_\(refund.id)",
                failureCode: "expired_card", retryable: chance(30))
            counts.settlements += 1
        } catch {
            history[history.count - 1] += " → \(error.code.rawValue)"
        }
        let after = try await engine.refund(refund.id).transactions[index]
        if late || transaction.status != .pending {
            guard after.status == transaction.status, after.attempts == transaction.attempts else {
                throw fail("an answer for an old attempt or a settled transaction moved it: \(transaction.status.rawValue) → \(after.status.rawValue)")
            }
        }
    }

    func failedRefund() async throws -> Refund? {
        guard let engine else { return nil }
        var failed: [Refund] = []
        for id in orderIDs {
            failed += try await engine.orderState(id).refunds.filter { $0.status == .failed }
        }
        return failed.isEmpty ? nil : failed[random(failed.count)]
    }

    func retry() async throws {
        guard let engine, let refund = try await failedRefund() else { return }
        let closed = refund.recoveries.contains { $0.action.closes }
        history.append("retry \(refund.id)\(closed ? " (closed)" : "")")
        retrying.insert(refund.id)
        switch await outcome({ () async throws(RefundError) in try await engine.retry(refundID: refund.id, caller: Fixtures.staff) }) {
        case .success:
            if closed { throw fail("a retry of a refund closed by \(refund.recoveries.map(\.action.rawValue)) was accepted") }
        case .failure(let error):
            history[history.count - 1] += " → \(error.code.rawValue)"
            if !closed { throw fail("a retry of a failed refund was refused: \(error.code.rawValue) \(error.message)") }
        }
    }

    func recover() async throws {
        guard let engine, let refund = try await failedRefund() else { return }
        let action = RecoveryAction.allCases[random(RecoveryAction.allCases.count)]
        let closed = refund.recoveries.contains { $0.action.closes }
        history.append("recover \(refund.id) \(action.rawValue)\(closed ? " (closed)" : "")")
        switch await outcome({ () async throws(RefundError) in
            try await engine.recover(refundID: refund.id, action: action, note: "n", caller: Fixtures.staff)
        }) {
        case .success:
            if closed { throw fail("a recovery after \(refund.recoveries.map(\.action.rawValue)) was accepted") }
        case .failure(let error):
            history[history.count - 1] += " → \(error.code.rawValue)"
            if !closed { throw fail("a recovery of a failed refund was refused: \(error.code.rawValue) \(error.message)") }
        }
    }

    func scheduler() async throws {
        guard let engine else { return }
        clock.advance(milliseconds: 3_600_000)
        // Failed transactions with a retry scheduled are still pending: only those may move.
        let sent = await engine.runDueAttempts()
        history.append("scheduler: \(sent) sent")
    }

    func dispute() async throws {
        guard let engine, let id = someOrder(), let model = orders[id] else { return }
        if model.disputeOpen {
            let outcome = DisputeOutcome.allCases[random(DisputeOutcome.allCases.count)]
            history.append("dispute close \(id) \(outcome.rawValue)")
            do throws(RefundError) {
                _ = try await engine.closeDispute(orderID: id, outcome: outcome, note: nil, caller: Fixtures.staff)
            } catch {
                throw fail("closing an open dispute was refused: \(error.code.rawValue)")
            }
            orders[id]?.disputeOpen = false
        } else {
            history.append("dispute open \(id)")
            do throws(RefundError) {
                _ = try await engine.openDispute(orderID: id, reason: "fraudulent", caller: Fixtures.staff)
                orders[id]?.disputeOpen = true
            } catch {
                history[history.count - 1] += " → \(error.code.rawValue)"
            }
        }
    }

    func request() async throws {
        guard let engine else { return }
        if !requests.isEmpty, chance(70) {
            let (requestID, id) = requests.remove(at: random(requests.count))
            guard let model = orders[id] else { return }
            if chance(25) {
                history.append("decline \(requestID)")
                let before = try await engine.orderState(id).refunds.count
                do throws(RefundError) {
                    _ = try await engine.declineRequest(requestID: requestID, note: nil, caller: Fixtures.staff)
                } catch {
                    throw fail("declining an open request was refused: \(error.code.rawValue)")
                }
                guard try await engine.orderState(id).refunds.count == before else { throw fail("a decline refunded") }
                return
            }
            var options = randomOptions(for: model)
            options.lines = nil
            options.idempotencyKey = nil
            history.append("approve \(requestID) \(describe(options))")
            try await create(orderID: id, options) { (engine: Engine) async throws(RefundError) -> Refund in
                try await engine.approveRequest(requestID: requestID, options, note: nil, caller: Fixtures.staff)
            }
            if let last = try await engine.orderState(id).refunds.last, history.last?.contains("→ \(last.id)") == true,
                last.requestID != requestID
            {
                throw fail("refund \(last.id) of an approved request names request \(last.requestID ?? "none")")
            }
            // A refused approval leaves the request open.
            if history.last?.contains("→ rf") != true { requests.append((requestID, id)) }
        } else if let id = someOrder() {
            history.append("request \(id)")
            do throws(RefundError) {
                let made = try await engine.requestRefund(orderID: id, lines: nil, reason: "customer_request", caller: Fixtures.staff)
                requests.append((made.id, id))
                history[history.count - 1] += " → \(made.id)"
            } catch {
                history[history.count - 1] += " → \(error.code.rawValue)"
            }
        }
    }

    func bulk() async throws {
        guard let engine else { return }
        let event = "evt_\(random(3))"
        let some = orderIDs.first { orders[$0]?.event == event }
        guard let sample = some.flatMap({ orders[$0] }) else { return }
        let options = randomOptions(for: sample, bulk: true)
        history.append("bulk \(event) \(describe(options))")
        // The model plans every order of the event before the job: each either gets exactly that refund from the
        // job, or none.
        var plans: [String: ModelVerdict] = [:]
        var before: [String: Int] = [:]
        for id in orderIDs where orders[id]?.event == event {
            let state = try await engine.orderState(id)
            plans[id] = orders[id]?.plan(options, pending: state.hasPendingTransaction)
            before[id] = state.refunds.count
        }
        let status: BulkJobStatus
        do throws(RefundError) {
            status = try await engine.runBulkCancellation(
                BulkCancelRequest(events: [event], options: options), caller: Fixtures.staff)
        } catch {
            throw fail("a bulk cancellation was refused: \(error.code.rawValue) \(error.message)")
        }
        jobs.append(status.jobID)
        var made = 0
        for id in orderIDs where orders[id]?.event == event {
            let refunds = try await engine.orderState(id).refunds
            let new = refunds.dropFirst(before[id] ?? 0)
            switch plans[id] {
            case .refund(var expected, let take, let credit, let removed, _)?:
                guard new.count == 1, let refund = new.first, refund.jobID == status.jobID else {
                    throw fail("bulk \(status.jobID): order \(id) got \(new.count) refunds; the model expected one")
                }
                expected.id = refund.id
                expected.jobID = status.jobID
                try compare(refund, expected)
                orders[id]?.apply(expected, tenderTake: take, removed: removed)
                if credit > 0, let customer = orders[id]?.customer { balances[customer, default: 0] += credit }
                made += 1
            default:
                guard new.isEmpty else { throw fail("bulk \(status.jobID): order \(id) was refunded; the model expected \(String(describing: plans[id]))") }
            }
        }
        history[history.count - 1] += " → \(status.jobID): \(made) refunds"
        counts.bulkRefunds += made
    }

    func snapshot() async throws {
        guard let engine else { return }
        history.append("snapshot")
        do throws(RefundError) { try await engine.snapshot() } catch { throw fail("snapshot failed: \(error.message)") }
    }

    /// The byte-identical image: canonical state, balances, and the event stream.
    func image(_ engine: Engine) async -> (UInt64, [OutboxEvent], [String: Int64]) {
        var balances: [String: Int64] = [:]
        for customer in Self.customers { balances[customer] = await engine.balance(customer: customer, currency: .gbp) }
        return (await engine.canonicalHash(), await engine.events(after: 0, limit: 1_000_000), balances)
    }

    func restart() async throws {
        guard let engine else { return }
        history.append("clean restart under another clock")
        let before = await image(engine)
        do throws(RefundError) { try await engine.close() } catch { throw fail("close failed: \(error.message)") }
        self.engine = nil
        // Replay must not read the clock: reopen under one a day ahead, and keep it.
        clock = ManualClock(clock.now().adding(milliseconds: 86_400_000))
        let reopened = try await open()
        self.engine = reopened
        let after = await image(reopened)
        guard before == after else { throw fail("a clean restart changed the image: \(describe(before, after))") }
        counts.restarts += 1
    }

    func kill() async throws {
        guard let engine else { return }
        history.append("kill -9 and restart")
        let before = await image(engine)
        engine.kill()
        self.engine = nil
        fs.restart(powerLoss: false)
        let reopened = try await open()
        self.engine = reopened
        let after = await image(reopened)
        guard before == after else { throw fail("a kill lost or changed acknowledged state: \(describe(before, after))") }
        counts.kills += 1
    }

    func describe(_ a: (UInt64, [OutboxEvent], [String: Int64]), _ b: (UInt64, [OutboxEvent], [String: Int64])) -> String {
        var parts: [String] = []
        if a.0 != b.0 { parts.append("state hash \(a.0) vs \(b.0)") }
        if a.1 != b.1 {
            let first = zip(a.1, b.1).first { $0 != $1 }
            parts.append("events \(a.1.count) vs \(b.1.count), first difference \(String(describing: first))")
        }
        if a.2 != b.2 { parts.append("balances \(a.2) vs \(b.2)") }
        return parts.joined(separator: "; ")
    }

    // MARK: The checks after every step

    func check() async throws {
        guard let engine else { return }
        var jobTotals: [String: (refunded: Int64, pending: Int64, failed: Int64, fee: Int64)] = [:]
        for id in orderIDs {
            guard let model = orders[id] else { continue }
            let state = try await engine.orderState(id)
            guard state.refunds.count == model.refunds.count else {
                throw fail("order \(id) has \(state.refunds.count) refunds; the model has \(model.refunds.count)")
            }
            for (refund, expected) in zip(state.refunds, model.refunds) {
                try compare(refund, expected)
                for (index, transaction) in refund.transactions.enumerated() {
                    let key = "\(refund.id)#\(index)"
                    if let earlier = statuses[key], earlier != transaction.status {
                        // Settled is final; a failed transaction goes again only by a retry of its refund (which
                        // the gateway may answer at once).
                        let legal = earlier == .pending || (earlier == .failed && retrying.contains(refund.id))
                        guard legal else {
                            throw fail("transaction \(key) moved \(earlier.rawValue) → \(transaction.status.rawValue)")
                        }
                    }
                    statuses[key] = transaction.status
                }
                if let job = refund.jobID {
                    var totals = jobTotals[job] ?? (0, 0, 0, 0)
                    totals.fee += refund.feeRetained
                    for transaction in refund.transactions {
                        switch transaction.status {
                        case .succeeded: totals.refunded += transaction.amount
                        case .pending: totals.pending += transaction.amount
                        case .failed: totals.failed += transaction.amount
                        }
                    }
                    jobTotals[job] = totals
                }
            }
            // Units: every line that left has exactly one refund, and the line's status says how.
            for (index, line) in model.lines.enumerated() {
                let expected: LineStatus = line.active ? .active : (line.cancelled ? .cancelled : .refunded)
                guard state.lineStatus[index] == expected else {
                    throw fail("order \(id) line \(line.id) is \(state.lineStatus[index].rawValue); the model says \(expected.rawValue)")
                }
                let records = state.refunds.filter { $0.lines.contains { $0.line == line.id } }.count
                guard records == (line.active ? 0 : 1) else {
                    throw fail("order \(id) line \(line.id) (\(expected.rawValue)) is in \(records) refunds")
                }
            }
            // Tenders: what each claims is the model's and never more than it paid.
            for (index, tender) in model.tenders.enumerated() {
                guard state.tenderRefunded[index] == tender.claimed, tender.claimed <= tender.amount else {
                    throw fail("order \(id) tender \(tender.id) claims \(state.tenderRefunded[index]) (model \(tender.claimed)) of \(tender.amount)")
                }
            }
            let totals = ModelTotals(state.totals)
            let expected = model.totals(state.refunds)
            guard totals == expected,
                totals.gross == totals.refunded + totals.outstanding + totals.retained + totals.net
            else { throw fail("order \(id) totals \(totals); the model says \(expected)") }
        }
        retrying.removeAll()
        for customer in Self.customers {
            let balance = await engine.balance(customer: customer, currency: .gbp)
            guard balance == balances[customer, default: 0] else {
                throw fail("\(customer)'s balance is \(balance); the model says \(balances[customer, default: 0])")
            }
        }
        // The gateway: per tender, the money of every distinct transaction it was asked for ≤ what was paid, and
        // one key never carried two amounts.
        let sent = gateway.sent.withLock { $0 }
        guard sent.conflicts.isEmpty else { throw fail("one idempotency key, two amounts: \(sent.conflicts)") }
        var asked: [String: [String: Int64]] = [:]  // order#tender → refund → amount
        for request in sent.requests.values {
            asked["\(request.orderID)#\(request.tenderID)", default: [:]][request.refundID] = request.amount
        }
        for (key, byRefund) in asked {
            let parts = key.split(separator: "#").map(String.init)
            guard let tender = orders[parts[0]]?.tenders.first(where: { $0.id == parts[1] }) else { continue }
            let total = byRefund.values.reduce(0, +)
            guard total <= tender.amount else { throw fail("the gateway was asked for \(total) on \(key), paid \(tender.amount)") }
        }
        for job in jobs {
            let status: BulkJobStatus
            do throws(RefundError) { status = try await engine.durableBulkStatus(jobID: job) } catch {
                throw fail("bulk job \(job) is gone: \(error.code.rawValue)")
            }
            let totals = jobTotals[job] ?? (0, 0, 0, 0)
            guard status.refunded == totals.refunded, status.pendingAmount == totals.pending,
                status.failedAmount == totals.failed, status.feeRetained == totals.fee
            else {
                throw fail(
                    "bulk \(job) says refunded \(status.refunded) pending \(status.pendingAmount) failed \(status.failedAmount) fee \(status.feeRetained); its refunds say \(totals)")
            }
        }
    }
}
