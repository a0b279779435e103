/// How fast the engine may call the payment gateway. Providers cap refund calls (Stripe's published defaults are
/// about 25 requests/s per endpoint and 100/s per account): a bulk cancellation of a large event must pace itself
/// rather than be refused. The limits apply to every gateway request the engine makes (bulk jobs, single refunds,
/// retries), so the provider's limit is one budget shared by all of them.
public struct GatewayLimits: Sendable, Equatable {
    /// Requests per second at most, over any one-second window (nil: unlimited).
    public var requestsPerSecond: Double?
    /// Requests in flight at once at most (nil: unlimited).
    public var concurrency: Int?
    /// How long a request the gateway answered `rateLimited` is retried (after each `retryAfter`) before it is
    /// left to the retry scheduler as an unknown outcome (same attempt, same idempotency key).
    public var maximumRateLimitWait: Duration

    public init(requestsPerSecond: Double? = nil, concurrency: Int? = nil, maximumRateLimitWait: Duration = .seconds(60)) {
        self.requestsPerSecond = requestsPerSecond.map { max(0.01, $0) }
        self.concurrency = concurrency.map { max(1, $0) }
        self.maximumRateLimitWait = maximumRateLimitWait
    }

    public static let unlimited = GatewayLimits()

    var isUnlimited: Bool { requestsPerSecond == nil && concurrency == nil }

    /// The most requests one gateway call may carry: a tenth of a second's worth under a rate (so sending is
    /// smooth, not a burst per second), and no more than the concurrency.
    var sliceLimit: Int {
        var limit = Int.max
        if let rate = requestsPerSecond { limit = max(1, Int(rate / 10)) }
        if let concurrency { limit = min(limit, concurrency) }
        return limit
    }
}

/// Applies ``GatewayLimits`` to the engine's gateway calls: before each call, ``admit(_:)`` (until it lets the
/// call go) and, under a concurrency limit, permits for its requests (``acquire(_:)`` / ``release(_:)``).
///
/// The rate is kept two ways at once, on the instants calls actually go (the actor records each as it admits
/// it): requests are spaced `1/rate` apart (a call of `k` takes `k` slots), and no one-second window ever holds
/// more than `rate` of them. So a provider that counts requests per second does not see more than the limit
/// (a few microseconds of jitter between admission and arrival aside; a `rateLimited` answer is sent again), and
/// a job's time is close to requests ÷ rate.
actor GatewayPacer {
    let limits: GatewayLimits
    /// When the next request's slot begins.
    private var nextSlot: ContinuousClock.Instant?
    /// Calls of the last second: (when, how many). A few entries: calls are a tenth of a second's worth.
    private var recent: [(ContinuousClock.Instant, Int)] = []
    private var recentCount = 0
    private var permits: Int
    private var waiters: [(Int, CheckedContinuation<Void, Never>)] = []

    init(_ limits: GatewayLimits) {
        self.limits = limits
        self.permits = limits.concurrency ?? .max
    }

    /// Nil: a call of `count` requests may go now (it is recorded as gone). Otherwise how long to wait before
    /// asking again.
    func admit(_ count: Int) -> Duration? {
        guard let rate = limits.requestsPerSecond else { return nil }
        let now = ContinuousClock.now
        let spacing = Duration.nanoseconds(Int64(1_000_000_000 / rate))
        // Slots not used while no call was waiting are kept for up to one call's worth (a slice), so the moments
        // between calls (applying answers, waking up) do not slow the job below the rate; the window below still
        // holds every second to the rate.
        let floor = now - spacing * limits.sliceLimit
        let base = nextSlot.map { max($0, floor) } ?? floor
        var earliest = base + spacing * (count - 1)
        while let oldest = recent.first, oldest.0 <= now - .seconds(1) {
            recent.removeFirst()
            recentCount -= oldest.1
        }
        // The window: at most `rate` requests in any second (a single call larger than that goes alone).
        let budget = max(Int(rate.rounded(.down)), count)
        var inWindow = recentCount
        var index = 0
        while inWindow + count > budget, index < recent.count {
            inWindow -= recent[index].1
            earliest = max(earliest, recent[index].0 + .seconds(1))
            index += 1
        }
        if earliest > now { return earliest - now }
        recent.append((now, count))
        recentCount += count
        nextSlot = base + spacing * count
        return nil
    }

    /// Takes `count` permits (at most the concurrency), waiting while too many requests are in flight.
    func acquire(_ count: Int) async {
        let count = min(count, limits.concurrency ?? .max)
        if waiters.isEmpty, permits >= count {
            permits -= count
            return
        }
        await withCheckedContinuation { waiters.append((count, $0)) }
    }

    func release(_ count: Int) {
        permits += min(count, limits.concurrency ?? .max)
        while let (wanted, continuation) = waiters.first, permits >= wanted {
            permits -= wanted
            waiters.removeFirst()
            continuation.resume()
        }
    }
}
