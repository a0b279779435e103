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
    public var refunded: Int64
    public var feeRetained: Int64
    public var skippedOrders: [BulkOrderIssue]
    public var failedOrders: [BulkOrderIssue]

    enum CodingKeys: String, CodingKey {
        case state, total, processed, succeeded, pending, failed, skipped, refunded
        case jobID = "job_id", dryRun = "dry_run", feeRetained = "fee_retained", skippedOrders = "skipped_orders"
        case failedOrders = "failed_orders"
    }
}

/// Status transitions of a job's refunds, gathered by a partition over a batch.
struct BulkJobDelta: Sendable {
    var pending = 0
    var succeeded = 0
    var failed = 0
    var newlyFailed: [String] = []
    var recovered: [String] = []

    mutating func record(order: String, from: TransactionStatus, to: TransactionStatus) {
        switch from {
        case .pending: pending -= 1
        case .succeeded: succeeded -= 1
        case .failed:
            failed -= 1
            recovered.append(order)
        }
        switch to {
        case .pending: pending += 1
        case .succeeded: succeeded += 1
        case .failed:
            failed += 1
            newlyFailed.append(order)
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
    var refunded: Int64 = 0
    var feeRetained: Int64 = 0
    var skippedOrders: [BulkOrderIssue] = []
    var failedOrders: [BulkOrderIssue] = []

    mutating func add(_ other: BulkTally) {
        processed += other.processed
        succeeded += other.succeeded
        pending += other.pending
        failed += other.failed
        skipped += other.skipped
        refunded &+= other.refunded
        feeRetained &+= other.feeRetained
        skippedOrders += other.skippedOrders
        failedOrders += other.failedOrders
    }
}

/// A running or finished bulk job. Partitions add their tallies; settlements move refunds from pending.
final class BulkJob: Sendable {
    let id: String
    let request: BulkCancelRequest
    private let status: Mutex<BulkJobStatus>
    /// Set once every order was processed and the first gateway answers are in (the summary is out).
    private let queued = Mutex(false)

    init(id: String, request: BulkCancelRequest, total: Int) {
        self.id = id
        self.request = request
        self.status = Mutex(
            BulkJobStatus(
                jobID: id, state: .running, dryRun: request.dryRun, total: total, processed: 0, succeeded: 0,
                pending: 0, failed: 0, skipped: 0, refunded: 0, feeRetained: 0, skippedOrders: [], failedOrders: []))
    }

    var snapshot: BulkJobStatus { status.withLock { $0 } }

    func setTotal(_ total: Int) { status.withLock { $0.total = total } }

    func add(_ tally: BulkTally) {
        status.withLock { $0.absorb(tally) }
    }

    /// Refunds of this job changed their derived status. Returns the status when this made the job complete.
    func apply(_ delta: BulkJobDelta) -> BulkJobStatus? {
        status.withLock { s in
            s.pending += delta.pending
            s.succeeded += delta.succeeded
            s.failed += delta.failed
            if !delta.recovered.isEmpty {
                let recovered = Set(delta.recovered)
                s.failedOrders.removeAll { recovered.contains($0.orderID) }
            }
            s.failedOrders += delta.newlyFailed.map { BulkOrderIssue(orderID: $0, reason: "refund_failed") }
            return completeIfDone(&s)
        }
    }

    /// Marks the job queued (all orders processed). Returns the status if it is also complete.
    func markQueued() -> BulkJobStatus? {
        queued.withLock { $0 = true }
        return status.withLock { completeIfDone(&$0) }
    }

    private func completeIfDone(_ s: inout BulkJobStatus) -> BulkJobStatus? {
        guard s.state == .running, s.pending == 0, s.processed >= s.total, queued.withLock({ $0 }) else { return nil }
        s.state = .completed
        return s
    }
}

extension BulkJobStatus {
    mutating func absorb(_ t: BulkTally) {
        processed += t.processed
        succeeded += t.succeeded
        pending += t.pending
        failed += t.failed
        skipped += t.skipped
        refunded &+= t.refunded
        feeRetained &+= t.feeRetained
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
