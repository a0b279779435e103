/// Where a refund's money goes (contract section 4).
public enum RefundMethod: String, Sendable, Codable, CaseIterable, Hashable {
    /// Back to each tender: card via the payment gateway, wallet to the balance, gift card re-credited.
    case original
    /// Recorded; the money is returned by hand.
    case offline
    /// All to the customer's account balance.
    case balance
    /// Cancellation: items removed, no money.
    case none
}

/// `full`: the organiser absorbs every fee (processing, platform, booking). Needs `override_fees`.
public enum RefundPolicy: String, Sendable, Codable, CaseIterable, Hashable {
    case standard, full
}

/// A cancellation fee retained from the refund (needs `apply_cancellation_fee`).
public enum CancellationFee: Sendable, Equatable, Hashable {
    /// A fee per line id; each ≤ that line's refundable amount.
    case perLine([String: Int64])
    /// The same fee on every selected line; each ≤ that line's refundable amount.
    case each(Int64)
    /// One amount split over the selected lines by their refundable amounts, capped at their total.
    case order(Int64)
}

extension CancellationFee: Codable {
    enum CodingKeys: String, CodingKey {
        case perLine = "per_line", each, order
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // `contains` for the three keys, not `allKeys`: this runs on every refund request and allKeys is slow.
        let present = [CodingKeys.perLine, .each, .order].filter { c.contains($0) }
        guard present.count == 1, let key = present.first else {
            throw RefundError(.invalidField, "fee must have exactly one of per_line, each, order")
        }
        switch key {
        case .perLine: self = .perLine(try c.decode([String: Int64].self, forKey: .perLine))
        case .each: self = .each(try c.decode(Int64.self, forKey: .each))
        case .order: self = .order(try c.decode(Int64.self, forKey: .order))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .perLine(let fees): try c.encode(fees, forKey: .perLine)
        case .each(let fee): try c.encode(fee, forKey: .each)
        case .order(let fee): try c.encode(fee, forKey: .order)
        }
    }
}

/// The parameters of one refund or cancellation (`refund.create`).
public struct RefundOptions: Sendable, Equatable, Hashable, Codable {
    /// Line ids to refund; nil means every active line of the order (lines blocked on their own are skipped).
    public var lines: [String]?
    public var method: RefundMethod
    public var fee: CancellationFee?
    public var includeProcessingFees: Bool
    public var includePlatformFees: Bool
    public var includeBookingFee: Bool
    public var policy: RefundPolicy
    /// A reason code, required (`event_cancelled`, `customer_request`, `moderation`, …).
    public var reason: String
    public var note: String?
    /// Release one unit of the ticket type per refunded line (default true).
    public var restock: Bool
    /// Queue a buyer confirmation in the outbox when the order has an email (default true).
    public var notify: Bool
    /// Text for the buyer confirmation, at most ``maxEmailTextBytes`` UTF-8 bytes; kept on the refund, and every
    /// event of the refund carries it.
    public var emailText: String?
    public var idempotencyKey: String?
    /// A customer self-service refund: the contract's self-service rules apply (needs `self_service`).
    public var selfService: Bool

    public init(
        lines: [String]? = nil, method: RefundMethod, fee: CancellationFee? = nil,
        includeProcessingFees: Bool = true, includePlatformFees: Bool = false, includeBookingFee: Bool = false,
        policy: RefundPolicy = .standard, reason: String, note: String? = nil, restock: Bool = true,
        notify: Bool = true, emailText: String? = nil, idempotencyKey: String? = nil, selfService: Bool = false
    ) {
        self.lines = lines
        self.method = method
        self.fee = fee
        self.includeProcessingFees = includeProcessingFees
        self.includePlatformFees = includePlatformFees
        self.includeBookingFee = includeBookingFee
        self.policy = policy
        self.reason = reason
        self.note = note
        self.restock = restock
        self.notify = notify
        self.emailText = emailText
        self.idempotencyKey = idempotencyKey
        self.selfService = selfService
    }

    /// The longest `email_text` accepted, in UTF-8 bytes (also the bound a decoder puts on a refund's text).
    public static let maxEmailTextBytes = 4096

    /// The same options without the idempotency key: what a repeat must match.
    public var withoutIdempotencyKey: RefundOptions {
        var copy = self
        copy.idempotencyKey = nil
        return copy
    }

    enum CodingKeys: String, CodingKey {
        case lines, method, fee, policy, reason, note, restock, notify
        case includeProcessingFees = "include_processing_fees", includePlatformFees = "include_platform_fees"
        case includeBookingFee = "include_booking_fee", emailText = "email_text"
        case idempotencyKey = "idempotency_key", selfService = "self_service"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lines = try c.decodeIfPresent([String].self, forKey: .lines)
        method = try c.decode(RefundMethod.self, forKey: .method)
        fee = try c.decodeIfPresent(CancellationFee.self, forKey: .fee)
        includeProcessingFees = try c.decodeIfPresent(Bool.self, forKey: .includeProcessingFees) ?? true
        includePlatformFees = try c.decodeIfPresent(Bool.self, forKey: .includePlatformFees) ?? false
        includeBookingFee = try c.decodeIfPresent(Bool.self, forKey: .includeBookingFee) ?? false
        policy = try c.decodeIfPresent(RefundPolicy.self, forKey: .policy) ?? .standard
        reason = try c.decode(String.self, forKey: .reason)
        note = try c.decodeIfPresent(String.self, forKey: .note)
        restock = try c.decodeIfPresent(Bool.self, forKey: .restock) ?? true
        notify = try c.decodeIfPresent(Bool.self, forKey: .notify) ?? true
        emailText = try c.decodeIfPresent(String.self, forKey: .emailText)
        idempotencyKey = try c.decodeIfPresent(String.self, forKey: .idempotencyKey)
        selfService = try c.decodeIfPresent(Bool.self, forKey: .selfService) ?? false
    }
}

/// What a caller may do. Passed with each command (contract: `refund`, `apply_cancellation_fee`, `cancel`,
/// `override_fees`, `record_recovery`, `self_service`; and, so that every op of the protocol has one,
/// `place_order`, `read`, `events`, `admin`: see docs/protocol.md, "Permissions").
public enum Permission: String, Sendable, Codable, CaseIterable, Hashable {
    case refund
    case applyCancellationFee = "apply_cancellation_fee"
    case cancel
    case overrideFees = "override_fees"
    case recordRecovery = "record_recovery"
    case selfService = "self_service"
    /// `order.put`: store or replace an order (the checkout).
    case placeOrder = "place_order"
    /// Reading orders, refunds, requests, balances, inventory, bulk jobs and stats.
    case read
    /// Consuming the outbox: `events.subscribe`, `events.list`, and `events.ack` (which drops events for every
    /// reader).
    case events
    /// Operating the engine: `snapshot`.
    case admin
}

/// Who is asking: the contract's "actor" (named `Caller` here because `Actor` is a Swift protocol).
public struct Caller: Sendable, Equatable, Hashable, Codable {
    public var id: String
    public var permissions: Set<Permission>

    public init(id: String, permissions: Set<Permission>) {
        self.id = id
        self.permissions = permissions
    }

    /// Staff with every permission except self-service.
    public static func staff(_ id: String) -> Caller {
        Caller(id: id, permissions: Set(Permission.allCases).subtracting([.selfService]))
    }

    /// A buyer acting on their own order.
    public static func customer(_ id: String) -> Caller { Caller(id: id, permissions: [.selfService]) }

    public func require(_ permission: Permission, for what: String) throws(RefundError) {
        guard permissions.contains(permission) else {
            throw RefundError(.permissionDenied, "\(what) needs the '\(permission.rawValue)' permission; \(id) lacks it")
        }
    }
}
