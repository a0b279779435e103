/// Facts from outside the order that a refund decision needs; the engine gathers them.
public struct RefundContext: Sendable {
    public var now: Timestamp
    public var caller: Caller
    /// The order is a parent with linked children that are not all fully refunded.
    public var childrenActive: Bool
    /// The customer's account balance (needed to refund wallet top-ups).
    public var customerBalance: Int64
    /// Self-service refunds close this many hours before the event starts.
    public var selfServiceCutoffHours: Int64
    /// True when ``selfServiceCutoffHours`` is the event's own (``EventSettings``), not the engine's: messages
    /// say which.
    public var selfServiceCutoffIsEventSetting: Bool = false
    /// The bulk job deciding this refund, if any.
    public var jobID: String?

    public init(
        now: Timestamp, caller: Caller, childrenActive: Bool = false, customerBalance: Int64 = 0,
        selfServiceCutoffHours: Int64 = 24, jobID: String? = nil
    ) {
        self.now = now
        self.caller = caller
        self.childrenActive = childrenActive
        self.customerBalance = customerBalance
        self.selfServiceCutoffHours = selfServiceCutoffHours
        self.jobID = jobID
    }
}
