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
    /// `refund_server_request_duration_seconds{op}`, made on first use: about 40 ops and 60 codes at most.
    private let requests = Mutex<[String: Counter]>([:])
    private let latencies = Mutex<[String: Timer]>([:])

    /// A dispatched request was answered.
    func answered(op: String, code: String, since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        latency(op).recordNanoseconds(seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000)
        counter(op: op, code: code).increment()
    }

    /// A line refused before it reached an op (too long, not a request, not authenticated): op `-`.
    func refused(_ code: RefundError.Code) { counter(op: "-", code: code.rawValue).increment() }

    private func counter(op: String, code: String) -> Counter {
        let key = op + " " + code
        return requests.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "refund_server_requests_total", dimensions: [("op", op), ("code", code)])
            counters[key] = counter
            return counter
        }
    }

    private func latency(_ op: String) -> Timer {
        latencies.withLock { timers in
            if let timer = timers[op] { return timer }
            let timer = Timer(label: "refund_server_request_duration_seconds", dimensions: [("op", op)])
            timers[op] = timer
            return timer
        }
    }
}
