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
    /// Failed. Retryable failures are retried automatically with exponential backoff.
    case failed(code: String, retryable: Bool)
}

/// A later answer about an accepted request.
public struct GatewaySettlement: Sendable, Equatable {
    public var refundID: String
    public var tenderID: String
    public var succeeded: Bool
    public var reference: String?
    public var failureCode: String?
    public var retryable: Bool

    public init(
        refundID: String, tenderID: String, succeeded: Bool, reference: String? = nil, failureCode: String? = nil,
        retryable: Bool = false
    ) {
        self.refundID = refundID
        self.tenderID = tenderID
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
