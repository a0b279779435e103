import CoreMetrics
import Logging
import Synchronization

/// What the server refuses and closes, and when it stops reading: each one counted (the `stats` op's `server`
/// counters, and swift-metrics counters) and logged with its `event` field and the peer's address, at most
/// ``RateLimitedLog/linesPerSecond`` lines per event kind per second (a flood of refusals must not flood the log;
/// the next line logged says how many were left out). See docs/operations.md, "Running it on a network".
final class ServerEvents: Sendable {
    let counters: ServerCounters
    private let log: RateLimitedLog
    private let metrics = ServerEventMetrics()

    init(counters: ServerCounters, logger: Logger) {
        self.counters = counters
        self.log = RateLimitedLog(logger: logger)
    }

    enum Refusal: String, Sendable {
        /// `too_many_connections`: the limit is reached.
        case limit = "too_many_connections"
        /// `shutting_down`.
        case shuttingDown = "shutting_down"
    }

    /// A new connection was answered `too_many_connections` or `shutting_down` and closed.
    func connectionRefused(peer: String, _ refusal: Refusal, limit: Int) {
        counters.rejectedConnections.add(1, ordering: .relaxed)
        metrics.rejected.increment()
        guard refusal == .limit else { return }  // at shutdown every newcomer is refused: no news
        log.warning(
            "connection_refused", "connection refused: the server is at its limit of \(limit) connections",
            ["peer": "\(peer)", "reason": "\(refusal.rawValue)"])
    }

    /// An unauthenticated connection was closed to make room for a new one (see `ConnectionRegistry`).
    func connectionEvicted(peer: String, unauthenticatedLimit: Int) {
        counters.evictedConnections.add(1, ordering: .relaxed)
        metrics.evicted.increment()
        log.warning(
            "connection_evicted",
            "closed the oldest unauthenticated connection to make room: \(unauthenticatedLimit) unauthenticated connections are the most allowed",
            ["peer": "\(peer)"])
    }

    /// A wrong token. `failures`: on this connection so far; `closing`: this one closes it.
    func authFailed(peer: String, failures: Int, closing: Bool) {
        counters.authFailures.add(1, ordering: .relaxed)
        metrics.authFailures.increment()
        log.warning(
            "auth_failed", "authentication failed: wrong token",
            ["peer": "\(peer)", "failures": "\(failures)", "closing": "\(closing)"])
    }

    /// A connection with a token configured did not authenticate in time.
    func authTimedOut(peer: String, after timeout: Duration) {
        counters.authTimeouts.add(1, ordering: .relaxed)
        metrics.authTimeouts.increment()
        log.warning(
            "auth_timeout", "closed a connection that did not authenticate within \(timeout.secondsText)", ["peer": "\(peer)"])
    }

    /// A connection was idle (or its output did not move: `stalled`) for the idle timeout.
    func idleTimedOut(peer: String, after timeout: Duration, stalled: Bool) {
        counters.idleTimeouts.add(1, ordering: .relaxed)
        metrics.idleTimeouts.increment()
        log.info(
            "idle_timeout",
            stalled
                ? "closed a connection whose client took none of its responses for \(timeout.secondsText)"
                : "closed a connection idle for \(timeout.secondsText)",
            ["peer": "\(peer)", "stalled": "\(stalled)"])
    }

    /// The read loop of a connection stopped because its output is backed up. Not logged: a slow network does this
    /// too; the counter says how often.
    func backpressurePaused() {
        counters.backpressurePauses.add(1, ordering: .relaxed)
        metrics.pauses.increment()
    }
}

/// The swift-metrics counters of ``ServerEvents`` (no-ops unless the process bootstrapped a metrics backend, as
/// `refundd --metrics-port` does).
private struct ServerEventMetrics: Sendable {
    let rejected = Counter(label: "refund_server_connections_rejected_total")
    let evicted = Counter(label: "refund_server_connections_evicted_total")
    let authFailures = Counter(label: "refund_server_auth_failures_total")
    let authTimeouts = Counter(label: "refund_server_timeouts_total", dimensions: [("kind", "auth")])
    let idleTimeouts = Counter(label: "refund_server_timeouts_total", dimensions: [("kind", "idle")])
    let pauses = Counter(label: "refund_server_backpressure_pauses_total")
}

extension Duration {
    /// `10 s`, `0.25 s`, `300 s`: for messages and logs.
    var secondsText: String {
        let (seconds, attoseconds) = components
        let milliseconds = attoseconds / 1_000_000_000_000_000
        guard milliseconds != 0 else { return "\(seconds) s" }
        var fraction = String(milliseconds)
        while fraction.count < 3 { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(seconds).\(fraction) s"
    }
}
