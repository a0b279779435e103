import RefundCore

/// What became of one order of a bulk job (`bulk.results`).
public struct BulkOrderResult: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Equatable, Codable, CaseIterable {
        /// The job's refund of the order: every transaction succeeded.
        case succeeded
        /// The job's refund is still at the gateway (or waiting for a retry).
        case pending
        /// The job's refund failed (it is in the attention queue unless recovered).
        case failed
        /// The job did not refund the order: `reason` says why (an eligibility code, `refund_in_progress`, …).
        case skipped
    }

    public var orderID: String
    public var outcome: Outcome
    public var refundID: String?
    /// The refund's amount and the fee it kept, in minor units of `currency`.
    public var amount: Int64?
    public var feeRetained: Int64?
    public var currency: String
    /// The gateway's references of the refund's card transactions, as far as it gave them.
    public var gatewayRefs: [String]
    /// Why it was skipped, or the last failure code of a failed refund.
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case outcome = "status", amount, currency, reason
        case orderID = "order_id", refundID = "refund_id", feeRetained = "fee_retained", gatewayRefs = "gateway_refs"
    }
}

extension Engine {
    /// `bulk.results`: each order of a job with what became of it, a page at a time, in the job's order (its
    /// events in the order given, each event's orders in the order they were stored); optionally only one
    /// outcome. Orders a running job has not reached yet, and orders its filters left out, are not listed.
    /// Cursor text: `b1.<partition>.<event index>.<position>`.
    public func bulkResultsPage(
        jobID: String, outcome: BulkOrderResult.Outcome? = nil, limit: Int = maximumPageSize, after cursor: String? = nil
    ) async throws(RefundError) -> ListPage<BulkOrderResult> {
        guard let job = shared.jobs.job(jobID) else { throw RefundError(.jobNotFound, "no bulk job '\(jobID.prefix(64))'") }
        let limit = Self.pageSize(limit)
        var (partition, event, position) = try cursor.map { text throws(RefundError) in try bulkCursor(text) } ?? (0, 0, 0)
        // Skipped orders are the job's record of them (an order skipped has no refund of the job to read).
        let skipped = Dictionary(job.snapshot.skippedOrders.map { ($0.orderID, $0.reason) }, uniquingKeysWith: { a, _ in a })
        let request = job.request
        var found: [(BulkOrderResult, partition: Int, event: Int, position: Int)] = []
        while partition < partitions.count && found.count <= limit {
            let page = await partitions[partition].bulkResults(
                jobID: jobID, request: request, skipped: skipped, outcome: outcome, event: event, position: position,
                limit: limit + 1 - found.count)
            for (result, e, p) in page { found.append((result, partition, e, p)) }
            partition += 1
            event = 0
            position = 0
        }
        await readBarrier()
        let items = found.prefix(limit)
        let next = found.count > limit ? items.last.map { "b1.\($0.partition).\($0.event).\($0.position + 1)" } : nil
        return ListPage(items: items.map(\.0), next: next)
    }

    private func bulkCursor(_ text: String) throws(RefundError) -> (Int, Int, Int) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "b1", let partition = Int(parts[1]), let event = Int(parts[2]),
            let position = Int(parts[3]), (0..<partitions.count).contains(partition), event >= 0, position >= 0
        else { throw RefundError(.invalidField, "cursor '\(text.prefix(64))' is not one this list gave out") }
        return (partition, event, position)
    }
}

extension Partition {
    /// This partition's share of `bulk.results` from (`event`, `position`) on: each of the job's orders (as its
    /// selection chose them) with the job's refund of it or its skip reason.
    func bulkResults(
        jobID: String, request: BulkCancelRequest, skipped: [String: String], outcome: BulkOrderResult.Outcome?,
        event: Int, position: Int, limit: Int
    ) -> [(BulkOrderResult, Int, Int)] {
        var out: [(BulkOrderResult, Int, Int)] = []
        var e = event
        while e < request.events.count {
            let slots = byEvent[request.events[e]] ?? []
            var p = e == event ? position : 0
            while p < slots.count {
                let state = states[slots[p]]
                if let result = Self.bulkResult(state, jobID: jobID, request: request, skipped: skipped),
                    outcome == nil || result.outcome == outcome
                {
                    out.append((result, e, p))
                    if out.count >= limit { return out }
                }
                p += 1
            }
            e += 1
        }
        return out
    }

    static func bulkResult(_ state: OrderState, jobID: String, request: BulkCancelRequest, skipped: [String: String])
        -> BulkOrderResult?
    {
        let order = state.order
        let currency = order.currency.code
        if let refund = state.refunds.last(where: { $0.jobID == jobID }) {
            let outcome: BulkOrderResult.Outcome =
                switch refund.status {
                case .succeeded: .succeeded
                case .pending: .pending
                case .failed: .failed
                }
            return BulkOrderResult(
                orderID: order.id, outcome: outcome, refundID: refund.id, amount: refund.amount,
                feeRetained: refund.feeRetained, currency: currency,
                gatewayRefs: refund.transactions.compactMap(\.gatewayRef),
                reason: outcome == .failed ? refund.transactions.last { $0.status == .failed }?.failures.last?.code : nil)
        }
        if let reason = skipped[order.id] {
            return BulkOrderResult(
                orderID: order.id, outcome: .skipped, refundID: nil, amount: nil, feeRetained: nil, currency: currency,
                gatewayRefs: [], reason: reason)
        }
        return nil
    }
}
