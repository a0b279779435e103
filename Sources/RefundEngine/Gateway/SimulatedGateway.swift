import RefundCore
import Synchronization

/// A payment gateway for tests, demos and benchmarks: configurable latency, failure rate and asynchronous
/// confirmation, deterministic for a given seed.
public final class SimulatedGateway: PaymentGateway {
    public struct Configuration: Sendable {
        /// Time per batch before answering (0: at once).
        public var latency: Duration
        /// Failures per million requests.
        public var failuresPerMillion: Int
        /// Whether failures are retryable.
        public var retryableFailures: Bool
        /// Answer `pending` and confirm later through the settlement channel, after this delay.
        public var asyncConfirmation: Duration?
        /// Answer `pending` and never confirm (an external process settles).
        public var neverConfirm: Bool
        public var seed: UInt64
        /// A provider's rate limit: requests beyond this many in any one-second window are answered
        /// `rateLimited` (retry after the time until the window has room), as a real provider answers 429.
        public var requestsPerSecond: Int?

        public init(
            latency: Duration = .zero, failuresPerMillion: Int = 0, retryableFailures: Bool = true,
            asyncConfirmation: Duration? = nil, neverConfirm: Bool = false, seed: UInt64 = 42,
            requestsPerSecond: Int? = nil
        ) {
            self.requestsPerSecond = requestsPerSecond.map { max(1, $0) }
            self.latency = latency
            self.failuresPerMillion = failuresPerMillion
            self.retryableFailures = retryableFailures
            self.asyncConfirmation = asyncConfirmation
            self.neverConfirm = neverConfirm
            self.seed = seed
        }
    }

    public let configuration: Configuration
    private let state: Mutex<(rng: UInt64, requests: Int, scripted: [GatewayOutcome])>
    /// Under a rate limit: when the requests of the last second were accepted, the most accepted in any one
    /// second, and how many were refused.
    private let window = Mutex<(accepted: [ContinuousClock.Instant], peak: Int, refused: Int)>(([], 0, 0))

    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.state = Mutex((configuration.seed | 1, 0, []))
    }

    /// Requests answered so far.
    public var requestCount: Int { state.withLock { $0.requests } }

    /// Under ``Configuration/requestsPerSecond``: the most requests accepted in any one-second window so far.
    public var peakRequestsPerSecond: Int { window.withLock { $0.peak } }

    /// Under ``Configuration/requestsPerSecond``: requests answered `rateLimited` so far.
    public var rateLimitedCount: Int { window.withLock { $0.refused } }

    /// Which of `count` requests arriving now the limit lets through (the first ones), and the retry-after for the
    /// rest.
    private func admit(_ count: Int, limit: Int) -> (Int, Duration) {
        window.withLock { w in
            let now = ContinuousClock.now
            w.accepted.removeAll { $0 <= now - .seconds(1) }
            let room = max(0, limit - w.accepted.count)
            let admitted = min(room, count)
            w.accepted += Array(repeating: now, count: admitted)
            w.peak = max(w.peak, w.accepted.count)
            w.refused += count - admitted
            let retryAfter = w.accepted.first.map { $0 + .seconds(1) - now } ?? .milliseconds(100)
            return (admitted, max(retryAfter, .milliseconds(1)))
        }
    }

    /// Queue outcomes to give, in order, before the configured behaviour resumes (for tests).
    public func script(_ outcomes: [GatewayOutcome]) { state.withLock { $0.scripted += outcomes } }

    public func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        if let limit = configuration.requestsPerSecond {
            let (admitted, retryAfter) = admit(requests.count, limit: limit)
            if admitted < requests.count {
                var outcomes = await answer(Array(requests.prefix(admitted)), settlements: settlements)
                outcomes += Array(repeating: .rateLimited(retryAfter: retryAfter), count: requests.count - admitted)
                return outcomes
            }
        }
        return await answer(requests, settlements: settlements)
    }

    private func answer(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome] {
        guard !requests.isEmpty else { return [] }
        if configuration.latency > .zero { try? await Task.sleep(for: configuration.latency) }
        let outcomes: [GatewayOutcome] = state.withLock { s in
            s.requests += requests.count
            var out: [GatewayOutcome] = []
            out.reserveCapacity(requests.count)
            for request in requests {
                if !s.scripted.isEmpty {
                    out.append(s.scripted.removeFirst())
                    continue
                }
                // xorshift64*: cheap, deterministic.
                s.rng ^= s.rng >> 12
                s.rng ^= s.rng << 25
                s.rng ^= s.rng >> 27
                let roll = Int((s.rng &* 2_685_821_657_736_338_717) % 1_000_000)
                if roll < configuration.failuresPerMillion {
                    out.append(.failed(code: "card_declined", retryable: configuration.retryableFailures))
                } else if configuration.asyncConfirmation != nil || configuration.neverConfirm {
                    out.append(.pending(reference: "re_\(request.idempotencyKey)"))
                } else {
                    out.append(.succeeded(reference: nil))
                }
            }
            return out
        }
        if let delay = configuration.asyncConfirmation, !configuration.neverConfirm {
            var later: [GatewaySettlement] = []
            for (request, outcome) in zip(requests, outcomes) {
                if case .pending(let reference) = outcome {
                    later.append(
                        GatewaySettlement(
                            refundID: request.refundID, tenderID: request.tenderID, attempt: request.attempt, succeeded: true,
                            reference: reference))
                }
            }
            if !later.isEmpty {
                Task {
                    try? await Task.sleep(for: delay)
                    await settlements.deliver(later)
                }
            }
        }
        return outcomes
    }
}
