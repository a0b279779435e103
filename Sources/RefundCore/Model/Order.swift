/// How an order was sold.
public enum Channel: String, Sendable, Codable, CaseIterable, Hashable {
    case online, boxOffice = "box_office", `import`, api, invoice, kiosk
}

/// Whether the order was paid for.
public enum OrderSource: String, Sendable, Codable, CaseIterable, Hashable {
    case paid, free, comp
}

/// What an order line sells.
public enum LineKind: String, Sendable, Codable, CaseIterable, Hashable {
    case ticket, product, fee, giftVoucher = "gift_voucher", deposit, walletTopUp = "wallet_top_up"
}

/// How a tender was paid. `wallet` is the customer's account balance.
public enum TenderMethod: String, Sendable, Codable, CaseIterable, Hashable {
    case card, wallet, giftCard = "gift_card", cash, bankTransfer = "bank_transfer", other
}

/// One line of an order, as the checkout sent it. Amounts are minor units of the order's currency.
public struct OrderLine: Sendable, Equatable, Hashable, Codable {
    public var id: String
    public var kind: LineKind
    public var ticketType: String?
    public var price: Int64
    public var discount: Int64
    /// Tax included in the paid value.
    public var tax: Int64
    public var processingFee: Int64
    public var platformFee: Int64
    public var transferred: Bool
    public var claimed: Bool

    public init(
        id: String, kind: LineKind = .ticket, ticketType: String? = nil, price: Int64, discount: Int64 = 0,
        tax: Int64 = 0, processingFee: Int64 = 0, platformFee: Int64 = 0, transferred: Bool = false,
        claimed: Bool = false
    ) {
        self.id = id
        self.kind = kind
        self.ticketType = ticketType
        self.price = price
        self.discount = discount
        self.tax = tax
        self.processingFee = processingFee
        self.platformFee = platformFee
        self.transferred = transferred
        self.claimed = claimed
    }

    /// What was paid for the item itself: `price − discount` (its refund snapshot). Validated not to overflow.
    public var paidValue: Int64 { price &- discount }

    enum CodingKeys: String, CodingKey {
        case id, kind, price, discount, tax, transferred, claimed
        case ticketType = "ticket_type", processingFee = "processing_fee", platformFee = "platform_fee"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        kind = try c.decodeIfPresent(LineKind.self, forKey: .kind) ?? .ticket
        ticketType = try c.decodeIfPresent(String.self, forKey: .ticketType)
        price = try c.decode(Int64.self, forKey: .price)
        discount = try c.decodeIfPresent(Int64.self, forKey: .discount) ?? 0
        tax = try c.decodeIfPresent(Int64.self, forKey: .tax) ?? 0
        processingFee = try c.decodeIfPresent(Int64.self, forKey: .processingFee) ?? 0
        platformFee = try c.decodeIfPresent(Int64.self, forKey: .platformFee) ?? 0
        transferred = try c.decodeIfPresent(Bool.self, forKey: .transferred) ?? false
        claimed = try c.decodeIfPresent(Bool.self, forKey: .claimed) ?? false
    }
}

/// One payment of an order.
public struct Tender: Sendable, Equatable, Hashable, Codable {
    public var id: String
    public var method: TenderMethod
    /// Captured amount.
    public var amount: Int64
    /// The payment gateway's reference for card payments (`pi_…`).
    public var gatewayRef: String?

    public init(id: String, method: TenderMethod, amount: Int64, gatewayRef: String? = nil) {
        self.id = id
        self.method = method
        self.amount = amount
        self.gatewayRef = gatewayRef
    }

    enum CodingKeys: String, CodingKey {
        case id, method, amount
        case gatewayRef = "gateway_ref"
    }
}

/// An order as the checkout sends it (contract section 2).
public struct Order: Sendable, Equatable, Hashable, Codable {
    public var id: String
    public var event: String
    public var eventStartsAt: Timestamp?
    /// nil for a box-office order.
    public var customer: String?
    public var email: String?
    public var currency: Currency
    public var channel: Channel
    public var source: OrderSource
    /// The parent order of a linked child order.
    public var parent: String?
    public var frozen: Bool
    public var syncPending: Bool
    public var bookingFee: Int64
    public var lines: [OrderLine]
    public var tenders: [Tender]

    public init(
        id: String, event: String, eventStartsAt: Timestamp? = nil, customer: String? = nil, email: String? = nil,
        currency: Currency, channel: Channel = .online, source: OrderSource = .paid, parent: String? = nil,
        frozen: Bool = false, syncPending: Bool = false, bookingFee: Int64 = 0, lines: [OrderLine],
        tenders: [Tender]
    ) {
        self.id = id
        self.event = event
        self.eventStartsAt = eventStartsAt
        self.customer = customer
        self.email = email
        self.currency = currency
        self.channel = channel
        self.source = source
        self.parent = parent
        self.frozen = frozen
        self.syncPending = syncPending
        self.bookingFee = bookingFee
        self.lines = lines
        self.tenders = tenders
    }

    /// A box-office order has no customer.
    public var isBoxOffice: Bool { customer == nil }

    public func lineIndex(_ id: String) -> Int? { lines.firstIndex { $0.id == id } }

    enum CodingKeys: String, CodingKey {
        case id, event, customer, email, currency, channel, source, parent, frozen, lines, tenders
        case eventStartsAt = "event_starts_at", syncPending = "sync_pending", bookingFee = "booking_fee"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        event = try c.decode(String.self, forKey: .event)
        eventStartsAt = try c.decodeIfPresent(Timestamp.self, forKey: .eventStartsAt)
        customer = try c.decodeIfPresent(String.self, forKey: .customer)
        email = try c.decodeIfPresent(String.self, forKey: .email)
        currency = try c.decode(Currency.self, forKey: .currency)
        channel = try c.decodeIfPresent(Channel.self, forKey: .channel) ?? .online
        source = try c.decodeIfPresent(OrderSource.self, forKey: .source) ?? .paid
        parent = try c.decodeIfPresent(String.self, forKey: .parent)
        frozen = try c.decodeIfPresent(Bool.self, forKey: .frozen) ?? false
        syncPending = try c.decodeIfPresent(Bool.self, forKey: .syncPending) ?? false
        bookingFee = try c.decodeIfPresent(Int64.self, forKey: .bookingFee) ?? 0
        lines = try c.decode([OrderLine].self, forKey: .lines)
        tenders = try c.decodeIfPresent([Tender].self, forKey: .tenders) ?? []
    }
}
