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
    /// Who holds the ticket (the attendee, notified about it) when it is not the purchaser: named at checkout
    /// (designated) or moved since (`order.transfer`). The purchaser stays the refund owner either way.
    public var holder: String?

    public init(
        id: String, kind: LineKind = .ticket, ticketType: String? = nil, price: Int64, discount: Int64 = 0,
        tax: Int64 = 0, processingFee: Int64 = 0, platformFee: Int64 = 0, transferred: Bool = false,
        claimed: Bool = false, holder: String? = nil
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
        self.holder = holder
    }

    /// What was paid for the item itself: `price − discount` (its refund snapshot). Validated not to overflow.
    public var paidValue: Int64 { price &- discount }

    enum CodingKeys: String, CodingKey {
        case id, kind, price, discount, tax, transferred, claimed, holder
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
        holder = try c.decodeIfPresent(String.self, forKey: .holder)
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
///
/// A value type whose fields live in one copy-on-write box: the engine copies orders often (into refunds'
/// context, views, the planner), and a copy is then one retain instead of one per string and array.
public struct Order: Sendable {
    @usableFromInline
    final class Storage: @unchecked Sendable {
        // @unchecked: written only through `Order.box` after a uniqueness check (copy-on-write).
        var id: String
        var event: String
        var eventStartsAt: Timestamp?
        var customer: String?
        var email: String?
        var currency: Currency
        var channel: Channel
        var source: OrderSource
        var parent: String?
        var frozen: Bool
        var syncPending: Bool
        var bookingFee: Int64
        var lines: [OrderLine]
        var tenders: [Tender]

        init(id: String, event: String, eventStartsAt: Timestamp?, customer: String?, email: String?, currency: Currency, channel: Channel, source: OrderSource, parent: String?, frozen: Bool, syncPending: Bool, bookingFee: Int64, lines: [OrderLine], tenders: [Tender]) {
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

        func copy() -> Storage {
            Storage(id: id, event: event, eventStartsAt: eventStartsAt, customer: customer, email: email, currency: currency, channel: channel, source: source, parent: parent, frozen: frozen, syncPending: syncPending, bookingFee: bookingFee, lines: lines, tenders: tenders)
        }
    }

    private var storage: Storage

    private var box: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
            return storage
        }
    }

    public var id: String {
        get { storage.id }
        _modify { yield &box.id }
    }
    public var event: String {
        get { storage.event }
        _modify { yield &box.event }
    }
    public var eventStartsAt: Timestamp? {
        get { storage.eventStartsAt }
        _modify { yield &box.eventStartsAt }
    }
    /// nil for a box-office order.
    public var customer: String? {
        get { storage.customer }
        _modify { yield &box.customer }
    }
    public var email: String? {
        get { storage.email }
        _modify { yield &box.email }
    }
    public var currency: Currency {
        get { storage.currency }
        _modify { yield &box.currency }
    }
    public var channel: Channel {
        get { storage.channel }
        _modify { yield &box.channel }
    }
    public var source: OrderSource {
        get { storage.source }
        _modify { yield &box.source }
    }
    /// The parent order of a linked child order.
    public var parent: String? {
        get { storage.parent }
        _modify { yield &box.parent }
    }
    public var frozen: Bool {
        get { storage.frozen }
        _modify { yield &box.frozen }
    }
    public var syncPending: Bool {
        get { storage.syncPending }
        _modify { yield &box.syncPending }
    }
    public var bookingFee: Int64 {
        get { storage.bookingFee }
        _modify { yield &box.bookingFee }
    }
    public var lines: [OrderLine] {
        get { storage.lines }
        _modify { yield &box.lines }
    }
    public var tenders: [Tender] {
        get { storage.tenders }
        _modify { yield &box.tenders }
    }

    public init(
        id: String, event: String, eventStartsAt: Timestamp? = nil, customer: String? = nil, email: String? = nil,
        currency: Currency, channel: Channel = .online, source: OrderSource = .paid, parent: String? = nil,
        frozen: Bool = false, syncPending: Bool = false, bookingFee: Int64 = 0, lines: [OrderLine],
        tenders: [Tender]
    ) {
        storage = Storage(id: id, event: event, eventStartsAt: eventStartsAt, customer: customer, email: email, currency: currency, channel: channel, source: source, parent: parent, frozen: frozen, syncPending: syncPending, bookingFee: bookingFee, lines: lines, tenders: tenders)
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
        let id = try c.decode(String.self, forKey: .id)
        let event = try c.decode(String.self, forKey: .event)
        let eventStartsAt = try c.decodeIfPresent(Timestamp.self, forKey: .eventStartsAt)
        let customer = try c.decodeIfPresent(String.self, forKey: .customer)
        let email = try c.decodeIfPresent(String.self, forKey: .email)
        let currency = try c.decode(Currency.self, forKey: .currency)
        let channel = try c.decodeIfPresent(Channel.self, forKey: .channel) ?? .online
        let source = try c.decodeIfPresent(OrderSource.self, forKey: .source) ?? .paid
        let parent = try c.decodeIfPresent(String.self, forKey: .parent)
        let frozen = try c.decodeIfPresent(Bool.self, forKey: .frozen) ?? false
        let syncPending = try c.decodeIfPresent(Bool.self, forKey: .syncPending) ?? false
        let bookingFee = try c.decodeIfPresent(Int64.self, forKey: .bookingFee) ?? 0
        let lines = try c.decode([OrderLine].self, forKey: .lines)
        let tenders = try c.decodeIfPresent([Tender].self, forKey: .tenders) ?? []
        self.init(
            id: id, event: event, eventStartsAt: eventStartsAt, customer: customer, email: email, currency: currency,
            channel: channel, source: source, parent: parent, frozen: frozen, syncPending: syncPending,
            bookingFee: bookingFee, lines: lines, tenders: tenders)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(event, forKey: .event)
        try c.encode(eventStartsAt, forKey: .eventStartsAt)
        try c.encode(customer, forKey: .customer)
        try c.encode(email, forKey: .email)
        try c.encode(currency, forKey: .currency)
        try c.encode(channel, forKey: .channel)
        try c.encode(source, forKey: .source)
        try c.encode(parent, forKey: .parent)
        try c.encode(frozen, forKey: .frozen)
        try c.encode(syncPending, forKey: .syncPending)
        try c.encode(bookingFee, forKey: .bookingFee)
        try c.encode(lines, forKey: .lines)
        try c.encode(tenders, forKey: .tenders)
    }
}

extension Order: Equatable, Hashable, Codable {
    public static func == (lhs: Order, rhs: Order) -> Bool {
        if lhs.storage === rhs.storage { return true }
        return lhs.id == rhs.id
            && lhs.event == rhs.event
            && lhs.eventStartsAt == rhs.eventStartsAt
            && lhs.customer == rhs.customer
            && lhs.email == rhs.email
            && lhs.currency == rhs.currency
            && lhs.channel == rhs.channel
            && lhs.source == rhs.source
            && lhs.parent == rhs.parent
            && lhs.frozen == rhs.frozen
            && lhs.syncPending == rhs.syncPending
            && lhs.bookingFee == rhs.bookingFee
            && lhs.lines == rhs.lines
            && lhs.tenders == rhs.tenders
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(event)
        hasher.combine(eventStartsAt)
        hasher.combine(customer)
        hasher.combine(email)
        hasher.combine(currency)
        hasher.combine(channel)
        hasher.combine(source)
        hasher.combine(parent)
        hasher.combine(frozen)
        hasher.combine(syncPending)
        hasher.combine(bookingFee)
        hasher.combine(lines)
        hasher.combine(tenders)
    }
}
