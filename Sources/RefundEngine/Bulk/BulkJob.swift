import RefundCore
import Synchronization

/// `bulk.cancel_event`: cancel (and refund) every order of some events.
public struct BulkCancelRequest: Sendable, Equatable {
    public var events: [String]
    /// Only orders with a tender of this method.
    public var paymentMethod: TenderMethod?
    /// Only orders sold through this channel.
    public var channel: Channel?
    /// Method, fee (`order` mode), restock, fee inclusion flags, policy, notify, email text, reason.
    public var options: RefundOptions
    /// Report what would happen, change nothing.
    public var dryRun: Bool

    public init(
        events: [String], paymentMethod: TenderMethod? = nil, channel: Channel? = nil, options: RefundOptions,
        dryRun: Bool = false
    ) {
        self.events = events
        self.paymentMethod = paymentMethod
        self.channel = channel
        self.options = options
        self.dryRun = dryRun
    }
}

/// An order a bulk job left alone or could not refund, and why (a reason or error code).
public struct BulkOrderIssue: Sendable, Equatable, Codable {
    public var orderID: String
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case reason
        case orderID = "order_id"
    }
}

/// `bulk.status`: live progress, the summary, and the final state of a bulk job.
public struct BulkJobStatus: Sendable, Equatable, Codable {
    /// `running` selects and refunds orders; `paused` (``Engine/pauseBulk(jobID:caller:)``) selects no new order
    /// until resumed; `aborted` (``Engine/abortBulk(jobID:caller:)``) selects no more, for good; `completed`: every
    /// order processed and no refund pending. An aborted job's refunds still settle: its last `bulk.update` comes
    /// when none is pending, and its state stays `aborted`.
    public enum State: String, Sendable, Codable { case running, paused, aborted, completed }

    public var jobID: String
    public var state: State
    public var dryRun: Bool
    public var total: Int
    public var processed: Int
    public var succeeded: Int
    public var pending: Int
    public var failed: Int
    public var skipped: Int
    /// Money that reached the buyers, in minor units of `currency`: the job's **succeeded** transactions only
    /// (for a dry run, what would be refunded). Money still at the gateway is in `pendingAmount`, money whose
    /// transaction failed in `failedAmount`: the three always add up to what the job's refunds are for.
    /// Amounts of different currencies are never added: when a job's refunds span several currencies,
    /// `currency` is nil, the four amounts here are 0, and `by_currency` holds them.
    public var refunded: Int64
    /// Money sent to the gateway and not answered yet (pending transactions).
    public var pendingAmount: Int64 = 0
    /// Money whose transaction failed: still owed to the buyers (see the attention queue).
    public var failedAmount: Int64 = 0
    /// Cancellation fees kept, whatever became of the refunds' money.
    public var feeRetained: Int64
    public var currency: String?
    /// The amounts per currency code.
    public var byCurrency: [String: BulkAmounts]
    public var skippedOrders: [BulkOrderIssue]
    public var failedOrders: [BulkOrderIssue]
    /// Orders processed per second since the job started (until every order was queued: then fixed).
    public var ordersPerSecond: Double?
    /// Seconds until every order is processed at that pace, while the job is processing (nil after, and before
    /// the first order).
    public var etaSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case state, total, processed, succeeded, pending, failed, skipped, refunded, currency
        case jobID = "job_id", dryRun = "dry_run", feeRetained = "fee_retained", skippedOrders = "skipped_orders"
        case failedOrders = "failed_orders", byCurrency = "by_currency", pendingAmount = "pending_amount"
        case failedAmount = "failed_amount", ordersPerSecond = "orders_per_second", etaSeconds = "eta_seconds"
    }

    /// Sets the amounts and `currency` from `byCurrency`.
    mutating func settleAmounts() {
        let single = byCurrency.count == 1 ? byCurrency.first : nil
        currency = single?.key
        let amounts = single?.value ?? BulkAmounts()
        refunded = amounts.refunded
        pendingAmount = amounts.pendingAmount
        failedAmount = amounts.failedAmount
        feeRetained = amounts.feeRetained
    }

    /// The one-line summary of `bulk.summary` / `bulk.update` events: counts, then the amounts of each currency
    /// (never added across currencies).
    var summaryText: String {
        var text = "total=\(total) processed=\(processed) succeeded=\(succeeded) pending=\(pending) failed=\(failed) skipped=\(skipped)"
        for (code, amounts) in byCurrency.sorted(by: { $0.key < $1.key }) {
            text += " \(code):refunded=\(amounts.refunded),pending_amount=\(amounts.pendingAmount),failed_amount=\(amounts.failedAmount),fee_retained=\(amounts.feeRetained)"
        }
        return text + " state=\(state.rawValue)"
    }
}

/// Money of one currency in a bulk job, by what became of it. `refunded + pendingAmount + failedAmount` is what
/// the job's refunds are for.
public struct BulkAmounts: Sendable, Equatable, Codable {
    /// Succeeded transactions: money that reached the buyer (a dry run: what would be refunded).
    public var refunded: Int64
    /// Pending transactions: at the gateway, or waiting for a retry.
    public var pendingAmount: Int64
    /// Failed transactions: owed, not paid.
    public var failedAmount: Int64
    /// Cancellation fees kept.
    public var feeRetained: Int64

    public init(refunded: Int64 = 0, pendingAmount: Int64 = 0, failedAmount: Int64 = 0, feeRetained: Int64 = 0) {
        self.refunded = refunded
        self.pendingAmount = pendingAmount
        self.failedAmount = failedAmount
        self.feeRetained = feeRetained
    }

    /// One refund's money, by the status of each of its transactions (a refund whose card share failed and whose
    /// wallet share succeeded counts both, each where it is).
    init(_ refund: Refund) {
        self.init(feeRetained: refund.feeRetained)
        for transaction in refund.transactions {
            switch transaction.status {
            case .succeeded: refunded.addSaturating(transaction.amount)
            case .pending: pendingAmount.addSaturating(transaction.amount)
            case .failed: failedAmount.addSaturating(transaction.amount)
            }
        }
    }

    // Sums across orders saturate (docs/money.md, "Checked arithmetic"): they never wrap.
    mutating func add(_ other: BulkAmounts) {
        refunded.addSaturating(other.refunded)
        pendingAmount.addSaturating(other.pendingAmount)
        failedAmount.addSaturating(other.failedAmount)
        feeRetained.addSaturating(other.feeRetained)
    }

    /// Takes back what ``add(_:)`` added (a refund's money before its transactions changed).
    mutating func remove(_ other: BulkAmounts) {
        func minus(_ a: Int64, _ b: Int64) -> Int64 {
            let (difference, overflow) = a.subtractingReportingOverflow(b)
            return overflow ? (b > 0 ? Int64.min : Int64.max) : difference
        }
        refunded = minus(refunded, other.refunded)
        pendingAmount = minus(pendingAmount, other.pendingAmount)
        failedAmount = minus(failedAmount, other.failedAmount)
        feeRetained = minus(feeRetained, other.feeRetained)
    }

    enum CodingKeys: String, CodingKey {
        case refunded
        case pendingAmount = "pending_amount", failedAmount = "failed_amount", feeRetained = "fee_retained"
    }
}

extension [String: BulkAmounts] {
    mutating func add(_ currency: String, refunded: Int64, feeRetained: Int64) {
        self[currency, default: BulkAmounts()].add(BulkAmounts(refunded: refunded, feeRetained: feeRetained))
    }

    mutating func merge(_ other: [String: BulkAmounts]) {
        for (currency, amounts) in other { self[currency, default: BulkAmounts()].add(amounts) }
    }
}

/// What one partition's refunds of one job add up to, derived from the refunds themselves (kept up to date by
/// the partition as refunds are created and settle, rebuilt by replay): so the counts are right whatever order
/// processing, settlement and recovery happen in.
struct JobRefundCounts: Sendable, Equatable {
    var succeeded = 0
    var pending = 0
    var failed = 0
    var amounts: [String: BulkAmounts] = [:]
    var failedOrders: [String] = []

    mutating func add(_ refund: Refund, currency: String) {
        amounts[currency, default: BulkAmounts()].add(BulkAmounts(refund))
        move(refund.orderID, to: refund.status, by: 1)
    }

    /// A refund of the job had its transactions change (an answer, a settlement, a retry): its money moves
    /// from where it was (`before`) to where it is (`after`).
    mutating func moveMoney(from before: BulkAmounts, to after: BulkAmounts, currency: String) {
        guard before != after else { return }
        amounts[currency, default: BulkAmounts()].remove(before)
        amounts[currency, default: BulkAmounts()].add(after)
    }

    mutating func move(_ order: String, to status: TransactionStatus, by count: Int) {
        switch status {
        case .succeeded: succeeded += count
        case .pending: pending += count
        case .failed:
            failed += count
            if count > 0 { failedOrders.append(order) } else { failedOrders.removeAll { $0 == order } }
        }
    }
}

/// Counts a partition gathers over a chunk of orders and adds to its job in one step.
struct BulkTally: Sendable {
    init(processed: Int = 0) { self.processed = processed }

    var processed = 0
    var succeeded = 0
    var pending = 0
    var failed = 0
    var skipped = 0
    /// What a dry run would refund, per currency.
    var amounts: [String: BulkAmounts] = [:]
    var skippedOrders: [BulkOrderIssue] = []
    var failedOrders: [BulkOrderIssue] = []

    mutating func add(_ other: BulkTally) {
        processed += other.processed
        succeeded += other.succeeded
        pending += other.pending
        failed += other.failed
        skipped += other.skipped
        amounts.merge(other.amounts)
        skippedOrders += other.skippedOrders
        failedOrders += other.failedOrders
    }
}

/// A running or finished bulk job. Partitions add their tallies; settlements move refunds from pending.
final class BulkJob: Sendable {
    let id: String
    let request: BulkCancelRequest
    /// Who started the job: a job resumed after a restart runs as them.
    let caller: Caller
    /// Processed and skipped orders (and, for a dry run, what would be refunded), from the partitions' tallies.
    private let status: Mutex<BulkJobStatus>
    /// Per partition: the job's refunds as they stand.
    private let refundCounts = Mutex<[Int: JobRefundCounts]>([:])
    /// Set once every order was processed and the first gateway answers are in (the summary is out).
    private let queued = Mutex(false)
    /// Set once the job's last `bulk.update` (completed, or an aborted job's refunds settled) is out.
    private let announcedEnd = Mutex(false)
    /// When the job started (or was resumed) and when its last order was queued: its pace.
    private let startedAt = ContinuousClock.now
    private let queuedAt = Mutex<ContinuousClock.Instant?>(nil)
    /// False for a job restored from the control log after its orders were all queued: its pace is not known.
    private let paceKnown = Atomic<Bool>(true)
    /// Pause, resume and abort, and the workers of ``Engine/execute(_:caller:)`` that obey them.
    private let control = Mutex(Control())
    /// Orders counted as processed before this run of the job (restored from the log): not part of its pace.
    private let processedBefore = Atomic<Int>(0)

    /// The job was restored already queued: it reports no pace.
    func restoredQueued() { paceKnown.store(false, ordering: .relaxed) }

    /// The job was restored aborted: its walk is over for good.
    func restoredAborted() {
        control.withLock { c in
            c.mode = .aborted
            c.processingDone = true
            c.stopped = true
        }
    }

    /// What the operator asked of a job, and where its workers stand.
    struct Control {
        enum Mode: Equatable { case running, paused, aborted }
        var mode = Mode.running
        /// Workers walking the selection now (one per partition during a phase).
        var workers = 0
        /// Workers waiting at a chunk boundary for a resume.
        var parked: [CheckedContinuation<Bool, Never>] = []
        /// Pausers waiting until every worker is parked or gone.
        var parkWaiters: [CheckedContinuation<Void, Never>] = []
        /// Aborters waiting for the job's final record; true once it is durable.
        var stopWaiters: [CheckedContinuation<Bool, Never>] = []
        /// An ``Engine/execute(_:caller:)`` task is walking the job (false for a job restored paused).
        var executing = false
        /// Every worker is done: pause and abort come too late (the job's refunds may still be settling).
        var processingDone = false
        /// The job's final control record (queued or aborted) is durable: Some(true), or failed: Some(false).
        var stopped: Bool?
        /// The engine is shutting down: parked workers leave.
        var shutDown = false
        /// Time spent paused during this run, and when the current pause began.
        var pausedFor: Duration = .zero
        var pausedSince: ContinuousClock.Instant?

        /// Resumes the pausers once no worker is walking.
        mutating func notifyIfParked() -> [CheckedContinuation<Void, Never>] {
            guard parked.count == workers else { return [] }
            defer { parkWaiters = [] }
            return parkWaiters
        }
    }

    init(id: String, request: BulkCancelRequest, caller: Caller, total: Int) {
        self.id = id
        self.request = request
        self.caller = caller
        self.status = Mutex(
            BulkJobStatus(
                jobID: id, state: .running, dryRun: request.dryRun, total: total, processed: 0, succeeded: 0,
                pending: 0, failed: 0, skipped: 0, refunded: 0, feeRetained: 0, currency: nil, byCurrency: [:],
                skippedOrders: [], failedOrders: []))
    }

    /// The status: tallies plus the refund counts of every partition.
    var snapshot: BulkJobStatus {
        let counts = refundCounts.withLock { $0 }
        var s = status.withLock { $0 }
        for (_, c) in counts.sorted(by: { $0.key < $1.key }) {
            s.succeeded += c.succeeded
            s.pending += c.pending
            s.failed += c.failed
            s.byCurrency.merge(c.amounts)
            s.failedOrders += c.failedOrders.map { BulkOrderIssue(orderID: $0, reason: "refund_failed") }
        }
        s.settleAmounts()
        let (mode, paused) = control.withLock { c in
            (c.mode, c.pausedFor + (c.pausedSince.map { .now - $0 } ?? .zero))
        }
        if s.state != .completed {
            switch mode {
            case .running: break
            case .paused: s.state = .paused
            case .aborted: s.state = .aborted
            }
        }
        let end = queuedAt.withLock { $0 }
        let elapsed = (end ?? .now) - startedAt - paused
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18  // not money
        let walked = s.processed - processedBefore.load(ordering: .relaxed)
        if walked > 0, seconds > 0, paceKnown.load(ordering: .relaxed) {
            let pace = Double(walked) / seconds
            s.ordersPerSecond = (pace * 10).rounded() / 10
            if end == nil, s.state == .running {
                s.etaSeconds = (Double(max(0, s.total - s.processed)) / pace * 10).rounded() / 10
            }
        }
        return s
    }

    // MARK: Pause, resume, abort

    var mode: Control.Mode { control.withLock { $0.mode } }
    var isExecuting: Bool { control.withLock { $0.executing } }

    /// Orders a restored job had processed before the restart (they do not count in its pace).
    func restoredProcessed(_ count: Int) {
        processedBefore.store(count, ordering: .relaxed)
        add(BulkTally(processed: count))
    }

    /// Why the job cannot be paused, resumed or aborted now (nil when it can: `to` is the mode asked for).
    func refusal(to mode: Control.Mode) -> String? {
        control.withLock { c in
            if request.dryRun { return "\(id) is a dry run" }
            if c.processingDone || c.stopped != nil {
                return "\(id) has already processed every order it will (state \(c.mode == .aborted ? "aborted" : "running" ))"
            }
            switch (c.mode, mode) {
            case (.aborted, _): return "\(id) was aborted"
            case (.paused, .paused): return "\(id) is already paused"
            case (.running, .running): return "\(id) is not paused"
            default: return nil
            }
        }
    }

    /// Sets the mode (its control record is durable). Pausing and resuming keep the pause time out of the pace;
    /// resuming and aborting wake the parked workers (an abort makes them leave).
    func set(_ mode: Control.Mode) {
        let wake: [CheckedContinuation<Bool, Never>] = control.withLock { c in
            guard c.mode != .aborted else { return [] }  // an abort is final
            let now = ContinuousClock.now
            if c.mode == .paused, mode != .paused, let since = c.pausedSince {
                c.pausedFor += now - since
                c.pausedSince = nil
            }
            if mode == .paused, c.mode != .paused { c.pausedSince = now }
            c.mode = mode
            guard mode != .paused else { return [] }
            defer { c.parked = [] }
            return c.parked
        }
        for worker in wake { worker.resume(returning: mode == .running) }
    }

    /// Waits until no worker is walking the job (each is parked or gone): after a pause, no new order is touched.
    func waitParked() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let ready = control.withLock { c -> Bool in
                guard c.parked.count < c.workers else { return true }
                c.parkWaiters.append(waiter)
                return false
            }
            if ready { waiter.resume() }
        }
    }

    /// Waits for the job's final control record; true once it is durable.
    func waitStopped() async -> Bool {
        await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
            let done = control.withLock { c -> Bool? in
                if let stopped = c.stopped { return stopped }
                c.stopWaiters.append(waiter)
                return nil
            }
            if let done { waiter.resume(returning: done) }
        }
    }

    /// A run of ``Engine/execute(_:caller:)`` begins (false when one already runs).
    func beginExecuting() -> Bool {
        control.withLock { c in
            guard !c.executing, c.stopped == nil else { return false }
            c.executing = true
            return true
        }
    }

    /// `count` workers start walking a phase.
    func workersStart(_ count: Int) { control.withLock { $0.workers = count } }

    /// A worker finished its part of the phase.
    func workerDone() {
        let waiters = control.withLock { c in
            c.workers -= 1
            return c.notifyIfParked()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// A worker's check before each chunk: true to go on; false to stop (aborted, or the engine is closing).
    /// While the job is paused it waits here.
    func checkpoint() async -> Bool {
        while true {
            let mode = control.withLock { c -> Control.Mode? in c.shutDown ? nil : c.mode }
            switch mode {
            case .running?: return true
            case .aborted?, nil: return false
            case .paused?: break
            }
            let go = await withCheckedContinuation { (worker: CheckedContinuation<Bool, Never>) in
                let (decided, waiters) = control.withLock { c -> (Bool?, [CheckedContinuation<Void, Never>]) in
                    if c.shutDown { return (false, []) }
                    guard c.mode == .paused else { return (c.mode == .running, []) }
                    c.parked.append(worker)
                    return (nil, c.notifyIfParked())
                }
                for waiter in waiters { waiter.resume() }
                if let decided { worker.resume(returning: decided) }
            }
            if !go { return false }
        }
    }

    /// Every worker is done; returns the mode the job ended its walk in (pause and abort are refused from now).
    func processingFinished() -> Control.Mode {
        control.withLock { c in
            c.processingDone = true
            c.workers = 0
            return c.mode
        }
    }

    /// The job's final record is written (or failed): aborters get their answer.
    func stopped(durable: Bool) {
        let waiters = control.withLock { c in
            c.stopped = durable
            c.executing = false
            defer { c.stopWaiters = [] }
            return c.stopWaiters
        }
        for waiter in waiters { waiter.resume(returning: durable) }
    }

    /// The engine is closing: parked workers leave and write nothing.
    func shutDown() {
        let (parked, pausers) = control.withLock { c in
            c.shutDown = true
            defer {
                c.parked = []
                c.parkWaiters = []
            }
            return (c.parked, c.parkWaiters)
        }
        for worker in parked { worker.resume(returning: false) }
        for pauser in pausers { pauser.resume() }
    }

    var isShutDown: Bool { control.withLock { $0.shutDown } }

    func setTotal(_ total: Int) { status.withLock { $0.total = total } }

    func add(_ tally: BulkTally) {
        status.withLock { $0.absorb(tally) }
    }

    /// A partition's refunds of this job now add up to `counts`. Returns the status when this completed the job.
    func update(partition: Int, _ counts: JobRefundCounts) -> BulkJobStatus? {
        refundCounts.withLock { $0[partition] = counts }
        return completeIfDone()
    }

    /// Marks the job queued (all orders processed). Returns the status if it is also complete.
    func markQueued() -> BulkJobStatus? {
        queuedAt.withLock { if $0 == nil { $0 = .now } }
        queued.withLock { $0 = true }
        return completeIfDone()
    }

    /// The job's last `bulk.update`: once it is queued (every order processed, or aborted) and no refund is
    /// pending. Returned once.
    private func completeIfDone() -> BulkJobStatus? {
        guard queued.withLock({ $0 }) else { return nil }
        let current = snapshot
        let aborted = current.state == .aborted
        guard current.pending == 0, aborted || current.processed >= current.total else { return nil }
        let won = announcedEnd.withLock { announced in
            guard !announced else { return false }
            announced = true
            return true
        }
        guard won else { return nil }
        if !aborted { status.withLock { $0.state = .completed } }
        var done = current
        if !aborted { done.state = .completed }
        return done
    }
}

extension BulkJobStatus {
    mutating func absorb(_ t: BulkTally) {
        processed += t.processed
        succeeded += t.succeeded
        pending += t.pending
        failed += t.failed
        skipped += t.skipped
        byCurrency.merge(t.amounts)
        skippedOrders += t.skippedOrders
        failedOrders += t.failedOrders
    }
}

/// Every bulk job of the engine, by id.
final class BulkJobRegistry: Sendable {
    private let jobs = Mutex<[String: BulkJob]>([:])
    private let counter = Mutex(0)

    func nextID() -> String {
        counter.withLock {
            $0 += 1
            return "job_\($0)"
        }
    }

    func register(_ job: BulkJob) { jobs.withLock { $0[job.id] = job } }

    /// Keeps new ids after a recovered `job_<n>`.
    func advance(past id: String) {
        guard id.hasPrefix("job_"), let number = Int(id.dropFirst(4)) else { return }
        counter.withLock { $0 = max($0, number) }
    }
    func job(_ id: String) -> BulkJob? { jobs.withLock { $0[id] } }
    var all: [BulkJob] { jobs.withLock { Array($0.values) } }
}
