import RefundCore

/// One refund the engine asks the payment gateway to make (card transactions of method `original`).
public struct GatewayRequest: Sendable, Equatable, Hashable {
    public var refundID: String
    public var orderID: String
    public var tenderID: String
    /// The original payment's reference (`pi_…`).
    public var paymentReference: String?
    public var amount: Int64
    public var currency: Currency
    /// 1 for the first attempt.
    public var attempt: Int
    /// Stable per attempt (`<refund>:<tender>:<attempt>`): a gateway must treat a repeat as the same request,
    /// which makes a re-send after a crash safe.
    public var idempotencyKey: String { "\(refundID):\(tenderID):\(attempt)" }
}

/// What the gateway said about one request.
public enum GatewayOutcome: Sendable, Equatable, Hashable {
    case succeeded(reference: String?)
    /// Accepted; the final answer comes later through ``SettlementChannel`` or `Engine.settle`.
    case pending(reference: String?)
    /// Failed. Retryable failures are retried automatically with exponential backoff, as a new attempt (a new
    /// idempotency key): only after a definite failure.
    case failed(code: String, retryable: Bool)
    /// No definite answer: a timeout, a connection reset, a gateway error that does not say whether the refund
    /// was made. The same attempt is sent again later under the **same** idempotency key, until the gateway gives
    /// a definite answer; a gateway that honours keys then answers for the one refund it made (or did not).
    case unknown(reason: String)
    /// Refused for now by the provider's rate limit (HTTP 429): nothing was done. The engine sends the same request
    /// again after `retryAfter`, without counting an attempt, and leaves it to the retry scheduler (as
    /// ``unknown(reason:)``, the same attempt and key) if the provider keeps refusing past
    /// ``GatewayLimits/maximumRateLimitWait``.
    case rateLimited(retryAfter: Duration)
}

/// A later answer about an accepted request.
public struct GatewaySettlement: Sendable, Equatable {
    public var refundID: String
    public var tenderID: String
    /// The attempt the answer is for (``GatewayRequest/attempt``; the idempotency key's last part). An answer is
    /// applied only to its own attempt: one for a superseded attempt is recorded on the refund as a late answer,
    /// and if two attempts of a transaction both succeeded the refund goes to the attention queue as
    /// `duplicate_payment_suspected`. Nil (discouraged) means the transaction's current attempt.
    public var attempt: Int?
    public var succeeded: Bool
    public var reference: String?
    public var failureCode: String?
    public var retryable: Bool

    public init(
        refundID: String, tenderID: String, attempt: Int? = nil, succeeded: Bool, reference: String? = nil,
        failureCode: String? = nil, retryable: Bool = false
    ) {
        self.refundID = refundID
        self.tenderID = tenderID
        self.attempt = attempt
        self.succeeded = succeeded
        self.reference = reference
        self.failureCode = failureCode
        self.retryable = retryable
    }
}

/// How a gateway reports settlements later: hand them to ``deliver(_:)``.
public struct SettlementChannel: Sendable {
    let sink: @Sendable ([GatewaySettlement]) async -> Void

    public init(_ sink: @escaping @Sendable ([GatewaySettlement]) async -> Void) { self.sink = sink }

    public func deliver(_ settlements: [GatewaySettlement]) async { await sink(settlements) }
}

/// The payment gateway, implemented by the embedding service. Called in batches (a bulk cancellation hands over
/// thousands of requests at once); the answer has one outcome per request, in order.
public protocol PaymentGateway: Sendable {
    func refund(_ requests: [GatewayRequest], settlements: SettlementChannel) async -> [GatewayOutcome]
}
