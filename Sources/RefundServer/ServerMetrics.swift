import CoreMetrics
import RefundCore
import Synchronization

/// Requests, connections and bytes of the server, as swift-metrics handles (no-ops unless the process bootstrapped
/// a backend, as `refundd --metrics-port` does). The refusals and timeouts are counted by ``ServerEvents``.
final class ServerMetrics: Sendable {
    /// `refund_server_connections`: open connections.
    let connections = Meter(label: "refund_server_connections")
    /// `refund_server_requests_in_flight`: requests dispatched and not yet answered.
    let inFlight = Meter(label: "refund_server_requests_in_flight")
    /// `refund_server_received_bytes_total`, `refund_server_sent_bytes_total`: request lines in, answers out.
    let bytesIn = Counter(label: "refund_server_received_bytes_total")
    let bytesOut = Counter(label: "refund_server_sent_bytes_total")
    /// `refund_server_requests_total{op,code}` (`code` is `ok` or the error code) and
    /// `refund_server_request_duration_seconds{op}`. The handles of every op and its `ok` counter are made up
    /// front, so a successful request only looks them up (no lock, no string built); error codes are made on
    /// first use (about 60 codes at most).
    private let latencies: [String: Timer]
    private let succeeded: [String: Counter]
    private let failed = Mutex<[String: Counter]>([:])

    init(ops: [String] = Operation.names) {
        var latencies: [String: Timer] = [:]
        var succeeded: [String: Counter] = [:]
        for op in ops {
            latencies[op] = Timer(label: "refund_server_request_duration_seconds", dimensions: [("op", op)])
            succeeded[op] = Counter(label: "refund_server_requests_total", dimensions: [("op", op), ("code", "ok")])
        }
        self.latencies = latencies
        self.succeeded = succeeded
    }

    /// A dispatched request was answered: `code` nil for success, else the error's.
    func answered(op: String, code: RefundError.Code?, since start: ContinuousClock.Instant) {
        latencies[op]?.recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
        if let code { counter(op: op, code: code.rawValue).increment() } else { succeeded[op]?.increment() }
    }

    /// A line refused before it reached an op (too long, not a request, not authenticated): op `-`.
    func refused(_ code: RefundError.Code) { counter(op: "-", code: code.rawValue).increment() }

    private func counter(op: String, code: String) -> Counter {
        let key = op + " " + code
        return failed.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "refund_server_requests_total", dimensions: [("op", op), ("code", code)])
            counters[key] = counter
            return counter
        }
    }
}
