import RefundCore

/// Automatic retries of retryable gateway failures: exponential backoff, a fixed number of attempts.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included (contract: 5).
    public var maxAttempts: Int
    /// Delay before the second attempt; doubles for each later one.
    public var baseDelayMilliseconds: Int64
    public var maxDelayMilliseconds: Int64

    public init(maxAttempts: Int = 5, baseDelayMilliseconds: Int64 = 1000, maxDelayMilliseconds: Int64 = 300_000) {
        self.maxAttempts = maxAttempts
        self.baseDelayMilliseconds = baseDelayMilliseconds
        self.maxDelayMilliseconds = maxDelayMilliseconds
    }

    /// When attempt `attempt + 1` is due after attempt `attempt` failed at `now`, or nil when attempts are spent.
    public func nextAttempt(after attempt: Int, at now: Timestamp) -> Timestamp? {
        guard attempt < maxAttempts else { return nil }
        let shift = min(max(attempt - 1, 0), 30)
        let delay = min(baseDelayMilliseconds << Int64(shift), maxDelayMilliseconds)
        return now.adding(milliseconds: delay)
    }
}
