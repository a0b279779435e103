import CoreMetrics
import RefundCore
import RefundStorage
import Synchronization

/// The engine's metrics, through swift-metrics: no backend here. `refundd` bootstraps Prometheus; an embedder
/// bootstraps whatever it scrapes, or nothing, and then every handle is a no-op. Handles are made once, when the
/// engine is, so the hot path only increments (an atomic add in the Prometheus backend).
///
/// Names follow Prometheus conventions (`_total` counters, base units); docs/operations.md lists them all.
final class EngineMetrics: Sendable {
    /// `refund_refunds_created_total{method}`: refunds made (single, approved requests and bulk), by method.
    let created: [RefundMethod: Counter]
    /// `refund_refunds_settled_total{method,status}`: refunds that reached succeeded (at once, or later at the
    /// gateway) or failed.
    let settled: [RefundMethod: (succeeded: Counter, failed: Counter)]
    /// `refund_refunds_pending{method}`: refunds with money still at the gateway, refreshed per scrape.
    let pending: [RefundMethod: Gauge]
    /// `refund_amount_refunded_minor_total{currency}`: money of the refunds made, in minor units.
    private let amounts = Mutex<[String: Counter]>([:])
    /// `refund_gateway_calls_total`, `refund_gateway_requests_total`, `refund_gateway_call_duration_seconds`.
    let gatewayCalls = Counter(label: "refund_gateway_calls_total")
    let gatewayRequests = Counter(label: "refund_gateway_requests_total")
    let gatewayLatency = Timer(label: "refund_gateway_call_duration_seconds")
    /// `refund_gateway_outcomes_total{outcome}`: succeeded, accepted (answered later), failed, unknown,
    /// rate_limited (sent again after the provider's retry-after).
    let gatewayOutcomes: [String: Counter]
    /// `refund_settlements_total{applied}`: answers delivered later (`refund.settle`, the settlement channel).
    let settlementsApplied = Counter(label: "refund_settlements_total", dimensions: [("applied", "true")])
    let settlementsDropped = Counter(label: "refund_settlements_total", dimensions: [("applied", "false")])
    /// `refund_retries_total{by}`: failed refunds sent again by `refund.retry` or by the retry scheduler.
    let manualRetries = Counter(label: "refund_retries_total", dimensions: [("by", "operator")])
    let scheduledRetries = Counter(label: "refund_retries_total", dimensions: [("by", "scheduler")])
    /// `refund_bulk_jobs_started_total`, `refund_bulk_orders_total` (rate: orders/s), `refund_bulk_jobs_running`.
    let bulkJobsStarted = Counter(label: "refund_bulk_jobs_started_total")
    let bulkOrders = Counter(label: "refund_bulk_orders_total")
    let bulkJobsRunning = Meter(label: "refund_bulk_jobs_running")
    /// `refund_snapshot_duration_seconds`, `refund_snapshots_total{result}`, `refund_snapshot_last_success_timestamp_seconds`.
    let snapshotDuration = Timer(label: "refund_snapshot_duration_seconds")
    let snapshotsWritten = Counter(label: "refund_snapshots_total", dimensions: [("result", "written")])
    let snapshotsFailed = Counter(label: "refund_snapshots_total", dimensions: [("result", "failed")])
    let snapshotLastSuccess = Gauge(label: "refund_snapshot_last_success_timestamp_seconds")
    /// Recovery at open: `refund_recovery_duration_seconds`, `refund_recovery_records_replayed`,
    /// `refund_recovery_orders_from_snapshots`, `refund_recovery_repairs`.
    let recoveryDuration = Gauge(label: "refund_recovery_duration_seconds")
    let recoveryRecords = Gauge(label: "refund_recovery_records_replayed")
    let recoveryOrders = Gauge(label: "refund_recovery_orders_from_snapshots")
    let recoveryRepairs = Gauge(label: "refund_recovery_repairs")
    /// Refreshed by ``Engine/refreshMetrics()`` (a scrape): sizes that are cheaper to count than to track.
    let orders = Gauge(label: "refund_orders")
    let refunds = Gauge(label: "refund_refunds")
    let pendingOrders = Gauge(label: "refund_orders_with_pending_refunds")
    let attentionQueue = Gauge(label: "refund_attention_queue")
    let outboxEvents = Gauge(label: "refund_outbox_events")
    let stopped = Gauge(label: "refund_engine_stopped")
    let failStops = Counter(label: "refund_fail_stops_total")

    init() {
        var created: [RefundMethod: Counter] = [:]
        var settled: [RefundMethod: (succeeded: Counter, failed: Counter)] = [:]
        var pending: [RefundMethod: Gauge] = [:]
        for method in RefundMethod.allCases {
            pending[method] = Gauge(label: "refund_refunds_pending", dimensions: [("method", method.rawValue)])
            created[method] = Counter(label: "refund_refunds_created_total", dimensions: [("method", method.rawValue)])
            settled[method] = (
                Counter(label: "refund_refunds_settled_total", dimensions: [("method", method.rawValue), ("status", "succeeded")]),
                Counter(label: "refund_refunds_settled_total", dimensions: [("method", method.rawValue), ("status", "failed")])
            )
        }
        self.created = created
        self.settled = settled
        self.pending = pending
        var outcomes: [String: Counter] = [:]
        for outcome in ["succeeded", "accepted", "failed", "unknown", "rate_limited"] {
            outcomes[outcome] = Counter(label: "refund_gateway_outcomes_total", dimensions: [("outcome", outcome)])
        }
        gatewayOutcomes = outcomes
    }

    func refundCreated(_ refund: Refund, currency code: String) {
        created[refund.method]?.increment()
        if refund.status == .succeeded { settled[refund.method]?.succeeded.increment() }  // no gateway: done at once
        guard refund.amount > 0 else { return }
        // One counter per currency, made on first use (currencies are a fixed table of about 180 codes).
        let counter = amounts.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = Counter(label: "refund_amount_refunded_minor_total", dimensions: [("currency", code)])
            counters[code] = counter
            return counter
        }
        counter.increment(by: refund.amount)
    }

    func refundSettled(_ refund: Refund) {
        switch refund.status {
        case .succeeded: settled[refund.method]?.succeeded.increment()
        case .failed: settled[refund.method]?.failed.increment()
        case .pending: break
        }
    }

    func gatewayOutcome(_ outcome: GatewayOutcome) {
        let name =
            switch outcome {
            case .succeeded: "succeeded"
            case .pending: "accepted"
            case .failed: "failed"
            case .unknown: "unknown"
            case .rateLimited: "rate_limited"
            }
        gatewayOutcomes[name]?.increment()
    }
}

/// Per-log metrics for ``WriteAheadLog`` (dimension `log`: `p0`…, `control`).
extension LogMetrics {
    static func named(_ log: String) -> LogMetrics {
        LogMetrics(
            appends: Counter(label: "refund_wal_records_total", dimensions: [("log", log)]),
            bytes: Counter(label: "refund_wal_bytes_total", dimensions: [("log", log)]),
            fsyncs: Counter(label: "refund_wal_fsyncs_total", dimensions: [("log", log)]),
            fsyncLatency: Timer(label: "refund_wal_fsync_duration_seconds", dimensions: [("log", log)]),
            batchRecords: Recorder(label: "refund_wal_group_commit_records", dimensions: [("log", log)]))
    }
}

extension Timer {
    func record(since start: ContinuousClock.Instant) { recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds) }
}
