/// The one error type of the engine's public surface.
///
/// Every rejected request gets one of these: a stable snake_case ``code`` that clients can switch on, and a
/// human ``message`` naming the field or the rule that was broken. Codes never change meaning once published;
/// new ones may be added. Eligibility failures carry the per-line reasons in ``blocked``.
public struct RefundError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, snake_case error code (see `docs/protocol.md` for the table).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String
    /// For eligibility failures: what is blocked and why (one entry per line, or one for the whole order).
    public let blocked: [BlockedItem]

    public init(_ code: Code, _ message: String, blocked: [BlockedItem] = []) {
        self.code = code
        self.message = message
        self.blocked = blocked
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension RefundError.Code {
    // Input shape
    public static let invalidField: Self = "invalid_field"
    public static let missingField: Self = "missing_field"
    public static let invalidHandle: Self = "invalid_handle"
    public static let duplicateID: Self = "duplicate_id"
    public static let invalidCurrency: Self = "invalid_currency"
    public static let invalidAmount: Self = "invalid_amount"
    public static let amountOverflow: Self = "amount_overflow"
    public static let invalidTimestamp: Self = "invalid_timestamp"
    // Orders
    public static let orderUnbalanced: Self = "order_unbalanced"
    /// The order contradicts itself in a way no single field shows (e.g. a `free` or `comp` order with paid tenders).
    public static let orderInvalid: Self = "order_invalid"
    public static let orderImmutable: Self = "order_immutable"
    public static let orderNotFound: Self = "order_not_found"
    public static let lineNotFound: Self = "line_not_found"
    public static let tenderNotFound: Self = "tender_not_found"
    // Refunds
    public static let refundNotFound: Self = "refund_not_found"
    public static let permissionDenied: Self = "permission_denied"
    public static let methodNotAvailable: Self = "method_not_available"
    public static let feeExceedsRefundable: Self = "fee_exceeds_refundable"
    public static let nothingToRefund: Self = "nothing_to_refund"
    public static let idempotencyConflict: Self = "idempotency_conflict"
    public static let invalidState: Self = "invalid_state"
    public static let requestNotFound: Self = "request_not_found"
    public static let jobNotFound: Self = "job_not_found"
    /// No settings were put for the event (`event.get`).
    public static let eventNotFound: Self = "event_not_found"
    /// A members-only event: the ticket would go back to a purchaser who holds another active ticket of it.
    public static let transferBackBlocked: Self = "transfer_back_blocked"
    public static let disputeNotOpen: Self = "dispute_not_open"
    // Engine
    public static let engineStopped: Self = "engine_stopped"
    /// The data directory holds a damaged log or snapshot (start with repair to cut it off).
    public static let dataCorrupt: Self = "data_corrupt"
    /// Acknowledged data is missing from the data directory: a segment the manifest lists is gone, or the log does
    /// not reach back to the snapshot it continues (start with repair to go on without it; the report says what).
    public static let dataMissing: Self = "data_missing"
    /// Another engine (another process, or another open engine in this one) holds the data directory.
    public static let dataDirectoryLocked: Self = "data_directory_locked"
    /// The data directory could not be read or written, or does not match the configuration.
    public static let storageFailed: Self = "storage_failed"
}

/// Something a refund cannot touch, and why (a reason code of contract section 5).
public struct BlockedItem: Sendable, Equatable, Hashable, Codable {
    /// The line id, or nil when the reason applies to the whole order.
    public let line: String?
    public let reason: EligibilityReason

    public init(line: String?, reason: EligibilityReason) {
        self.line = line
        self.reason = reason
    }
}

/// The eligibility reason codes of contract section 5.
public enum EligibilityReason: String, Sendable, Codable, CaseIterable, Hashable {
    case alreadyRefunded = "already_refunded"
    case orderFrozen = "order_frozen"
    case syncPending = "sync_pending"
    case refundInProgress = "refund_in_progress"
    case giftVoucherClaimed = "gift_voucher_claimed"
    case depositNotRefundable = "deposit_not_refundable"
    case transferredAfterCheckout = "transferred_after_checkout"
    case noPaymentToRefund = "no_payment_to_refund"
    case disputed = "disputed"
    case childOrdersActive = "child_orders_active"
    case selfServiceClosed = "self_service_closed"
    case walletBalanceSpent = "wallet_balance_spent"
    case transferPending = "transfer_pending"

    public var code: RefundError.Code { RefundError.Code(rawValue: rawValue) }

    /// A sentence for people.
    public var explanation: String {
        switch self {
        case .alreadyRefunded: "the line was already refunded or cancelled"
        case .orderFrozen: "the order is frozen"
        case .syncPending: "the order is waiting for a sync and cannot change yet"
        case .refundInProgress: "a refund of this order is still pending at the payment gateway"
        case .giftVoucherClaimed: "the gift voucher has been claimed"
        case .depositNotRefundable: "deposits are not refundable"
        case .transferredAfterCheckout: "the ticket was transferred to someone else after checkout"
        case .noPaymentToRefund: "nothing was paid for this order"
        case .disputed: "the order has an open payment dispute"
        case .childOrdersActive: "linked child orders must be fully refunded first"
        case .selfServiceClosed: "customer self-service refunds are not allowed for this selection"
        case .walletBalanceSpent: "the wallet top-up has already been spent"
        case .transferPending: "a transfer of the ticket to someone else is pending"
        }
    }
}
