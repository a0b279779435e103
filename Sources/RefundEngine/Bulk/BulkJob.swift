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
    public enum State: String, Sendable, Codable { case running, completed }

    public var jobID: String
    public var state: State
    public var dryRun: Bool
    public var total: Int
    public var processed: Int
    public var succeeded: Int
    public var pending: Int
    public var failed: Int
    public var skipped: Int
    /// Money refunded, in minor units of `currency`. Amounts of different currencies are never added: when a
    /// job's refunds span several currencies, `currency` is nil, `refunded` and `fee_retained` are 0, and
    /// `by_currency` holds the amounts.
    public var refunded: Int64
    public var feeRetained: Int64
    public var currency: String?
    /// Refunded and retained amounts per currency code.
    public var byCurrency: [String: BulkAmounts]
    public var skippedOrders: [BulkOrderIssue]
    public var failedOrders: [BulkOrderIssue]

    enum CodingKeys: String, CodingKey {
        case state, total, processed, succeeded, pending, failed, skipped, refunded, currency
        case jobID = "job_id", dryRun = "dry_run", feeRetained = "fee_retained", skippedOrders = "skipped_orders"
        case failedOrders = "failed_orders", byCurrency = "by_currency"
    }

    /// Sets `refunded`, `fee_retained` and `currency` from `byCurrency`.
    mutating func settleAmounts() {
        if byCurrency.count == 1, let (code, amounts) = byCurrency.first {
            currency = code
            refunded = amounts.refunded
            feeRetained = amounts.feeRetained
        } else {
            currency = nil
            refunded = 0
            feeRetained = 0
        }
    }
}

/// Money of one currency in a bulk job.
public struct BulkAmounts: Sendable, Equatable, Codable {
    public var refunded: Int64
    public var feeRetained: Int64

    public init(refunded: Int64 = 0, feeRetained: Int64 = 0) {
        self.refunded = refunded
        self.feeRetained = feeRetained
    }

    mutating func add(_ other: BulkAmounts) {
        refunded.addSaturating(other.refunded)
        feeRetained.addSaturating(other.feeRetained)
    }

    enum CodingKeys: String, CodingKey {
        case refunded
        case feeRetained = "fee_retained"
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
        amounts.add(currency, refunded: refund.amount, feeRetained: refund.feeRetained)
        move(refund.orderID, to: refund.status, by: 1)
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
    /// Processed and skipped orders (and, for a dry run, what would be refunded), from the partitions' tallies.
    private let status: Mutex<BulkJobStatus>
    /// Per partition: the job's refunds as they stand.
    private let refundCounts = Mutex<[Int: JobRefundCounts]>([:])
    /// Set once every order was processed and the first gateway answers are in (the summary is out).
    private let queued = Mutex(false)

    init(id: String, request: BulkCancelRequest, total: Int) {
        self.id = id
        self.request = request
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
        return s
    }

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
        queued.withLock { $0 = true }
        return completeIfDone()
    }

    private func completeIfDone() -> BulkJobStatus? {
        guard queued.withLock({ $0 }) else { return nil }
        let current = snapshot
        guard current.state == .running, current.pending == 0, current.processed >= current.total else { return nil }
        let won = status.withLock { s in
            guard s.state == .running else { return false }
            s.state = .completed
            return true
        }
        guard won else { return nil }
        var done = current
        done.state = .completed
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
