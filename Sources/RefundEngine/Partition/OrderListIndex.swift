import RefundCore

/// What `order.list` can ask for. Every filter given must hold.
public struct OrderFilter: Sendable, Equatable {
    public enum RefundCondition: String, Sendable, Equatable, CaseIterable, Codable {
        /// A refund transaction is pending (waiting for the gateway, a retry or a settlement).
        case pending
        /// A refund failed and is neither retried successfully nor recovered (the attention queue).
        case failed
    }

    public var event: String?
    public var customer: String?
    /// Compared without regard to case.
    public var email: String?
    public var status: OrderStatus?
    public var disputed: Bool?
    public var refunds: RefundCondition?

    public init(
        event: String? = nil, customer: String? = nil, email: String? = nil, status: OrderStatus? = nil,
        disputed: Bool? = nil, refunds: RefundCondition? = nil
    ) {
        self.event = event
        self.customer = customer
        self.email = email
        self.status = status
        self.disputed = disputed
        self.refunds = refunds
    }
}

/// One row of `order.list`: the order's identity and where its money stands, without its lines and refunds
/// (`order.get` has those).
public struct OrderSummary: Sendable, Equatable, Codable {
    public var id: String
    public var event: String
    public var customer: String?
    public var email: String?
    public var currency: String
    public var status: OrderStatus
    public var gross: Int64
    public var refunded: Int64
    public var outstanding: Int64
    /// Refunds made (all methods, cancellations without money included).
    public var refunds: Int
    public var disputed: Bool
    public var refundPending: Bool
    public var refundFailed: Bool

    enum CodingKeys: String, CodingKey {
        case id, event, customer, email, currency, status, gross, refunded, outstanding, refunds, disputed
        case refundPending = "refund_pending", refundFailed = "refund_failed"
    }

    init(_ state: OrderState) {
        let totals = state.totals
        id = state.order.id
        event = state.order.event
        customer = state.order.customer
        email = state.order.email
        currency = state.order.currency.code
        status = state.status
        gross = totals.gross
        refunded = totals.refunded
        outstanding = totals.outstanding
        refunds = state.refunds.count
        disputed = state.openDispute != nil
        refundPending = state.hasPendingTransaction
        refundFailed = state.refunds.contains { $0.needsAttention }
    }
}

/// The secondary indexes of one partition that `order.list` reads: orders by customer and by email (the event
/// index is the partition's `byEvent`), the orders in each status, disputed, and with a failed refund (pending
/// ones are the partition's `pendingSlots`); and, built when first asked for and dropped when its set changes,
/// each set's slots sorted by order id, so the pages of a list cost a binary search and the page, not a sort.
///
/// Kept up to date by ``Partition/commit(_:_:)`` and ``Partition/insert(_:by:at:)`` (and rebuilt by
/// ``Partition/restore(_:)``): a status, dispute or failure flag is compared with the one recorded for the slot
/// and the sets change only when it did.
struct OrderListIndex {
    enum Key: Hashable {
        case all
        case event(String)
        case customer(String)
        case email(String)
    }

    var byCustomer: [String: [Int]] = [:]
    var byEmail: [String: [Int]] = [:]
    var byStatus: [OrderStatus: Set<Int>] = [:]
    var disputed: Set<Int> = []
    var failed: Set<Int> = []
    /// Per slot: the status and flags last recorded (to update the sets only on a change).
    var recorded: [Flags] = []
    /// Slots sorted by order id, per key, built on demand.
    var sorted: [Key: [Int]] = [:]

    struct Flags: Equatable {
        var status: OrderStatus
        var disputed: Bool
        var failed: Bool

        init(_ state: OrderState) {
            status = state.status
            disputed = state.openDispute != nil
            failed = state.refunds.contains { $0.needsAttention }
        }
    }

    static func emailKey(_ email: String) -> String { email.lowercased() }

    /// A new order in `slot` (the next one).
    mutating func inserted(_ slot: Int, _ state: OrderState) {
        precondition(slot == recorded.count, "order slots are appended in order")
        let order = state.order
        if let customer = order.customer { byCustomer[customer, default: []].append(slot) }
        if let email = order.email { byEmail[Self.emailKey(email), default: []].append(slot) }
        let flags = Flags(state)
        recorded.append(flags)
        byStatus[flags.status, default: []].insert(slot)
        if flags.disputed { disputed.insert(slot) }
        if flags.failed { failed.insert(slot) }
        if !sorted.isEmpty {
            sorted[.all] = nil
            sorted[.event(order.event)] = nil
            if let customer = order.customer { sorted[.customer(customer)] = nil }
            if let email = order.email { sorted[.email(Self.emailKey(email))] = nil }
        }
    }

    /// The order in `slot` changed (after a commit): its status and flags, and its customer or email if its
    /// content was replaced.
    mutating func changed(_ slot: Int, _ state: OrderState, previous order: Order?) {
        if let old = order, old.customer != state.order.customer || old.email != state.order.email || old.event != state.order.event {
            if let customer = old.customer { byCustomer[customer]?.removeAll { $0 == slot } }
            if let email = old.email { byEmail[Self.emailKey(email)]?.removeAll { $0 == slot } }
            if let customer = state.order.customer { byCustomer[customer, default: []].insertSorted(slot) }
            if let email = state.order.email { byEmail[Self.emailKey(email), default: []].insertSorted(slot) }
            sorted = [:]
        }
        let flags = Flags(state)
        let before = recorded[slot]
        guard flags != before else { return }
        recorded[slot] = flags
        if flags.status != before.status {
            byStatus[before.status]?.remove(slot)
            byStatus[flags.status, default: []].insert(slot)
        }
        if flags.disputed != before.disputed {
            if flags.disputed { disputed.insert(slot) } else { disputed.remove(slot) }
        }
        if flags.failed != before.failed {
            if flags.failed { failed.insert(slot) } else { failed.remove(slot) }
        }
    }
}

extension Partition {
    /// `order.list`'s share of this partition: up to `limit` orders matching `filter` with ids after `after`,
    /// sorted by id.
    func orderPage(_ filter: OrderFilter, after: String?, limit: Int) -> [OrderSummary] {
        // The candidates: the smallest set the filter names, sorted by id. An event, customer or email list keeps
        // its sorted view between pages; a status, dispute or refund-condition set is sorted when read (it is
        // chosen only when it is the smaller).
        enum Source {
            case keyed(OrderListIndex.Key)
            case set(Set<Int>)
        }
        var sources: [(Source, Int)] = []
        if let event = filter.event { sources.append((.keyed(.event(event)), byEvent[event]?.count ?? 0)) }
        if let customer = filter.customer {
            sources.append((.keyed(.customer(customer)), listIndex.byCustomer[customer]?.count ?? 0))
        }
        if let email = filter.email {
            let key = OrderListIndex.emailKey(email)
            sources.append((.keyed(.email(key)), listIndex.byEmail[key]?.count ?? 0))
        }
        switch filter.refunds {
        case .pending: sources.append((.set(pendingSlots), pendingSlots.count))
        case .failed: sources.append((.set(listIndex.failed), listIndex.failed.count))
        case nil: break
        }
        if filter.disputed == true { sources.append((.set(listIndex.disputed), listIndex.disputed.count)) }
        if let status = filter.status {
            let set = listIndex.byStatus[status] ?? []
            sources.append((.set(set), set.count))
        }
        let candidates: [Int]
        switch sources.min(by: { $0.1 < $1.1 })?.0 {
        case .keyed(let key): candidates = sortedSlots(key)
        case .set(let set) where set.count * 4 < states.count: candidates = sortedByID(Array(set))
        case .set, nil: candidates = sortedSlots(.all)
        }
        var i = 0
        if let after {
            // The first slot whose order id sorts after the cursor.
            var low = 0
            var high = candidates.count
            while low < high {
                let mid = (low + high) / 2
                if states[candidates[mid]].order.id <= after { low = mid + 1 } else { high = mid }
            }
            i = low
        }
        var out: [OrderSummary] = []
        while i < candidates.count, out.count < limit {
            let slot = candidates[i]
            i += 1
            if matches(slot, filter) { out.append(OrderSummary(states[slot])) }
        }
        return out
    }

    private func matches(_ slot: Int, _ filter: OrderFilter) -> Bool {
        let order = states[slot].order
        if let event = filter.event, order.event != event { return false }
        if let customer = filter.customer, order.customer != customer { return false }
        if let email = filter.email, order.email.map(OrderListIndex.emailKey) != OrderListIndex.emailKey(email) {
            return false
        }
        let flags = listIndex.recorded[slot]
        if let status = filter.status, flags.status != status { return false }
        if let disputed = filter.disputed, flags.disputed != disputed { return false }
        switch filter.refunds {
        case .pending: if !pendingSlots.contains(slot) { return false }
        case .failed: if !flags.failed { return false }
        case nil: break
        }
        return true
    }

    /// The slots of `key`, sorted by order id (cached until the key's set changes).
    private func sortedSlots(_ key: OrderListIndex.Key) -> [Int] {
        if let cached = listIndex.sorted[key] { return cached }
        let slots: [Int]
        switch key {
        case .all: slots = Array(states.indices)
        case .event(let event): slots = byEvent[event] ?? []
        case .customer(let customer): slots = listIndex.byCustomer[customer] ?? []
        case .email(let email): slots = listIndex.byEmail[email] ?? []
        }
        let sorted = sortedByID(slots)
        listIndex.sorted[key] = sorted
        return sorted
    }

    private func sortedByID(_ slots: [Int]) -> [Int] {
        slots.sorted { states[$0].order.id < states[$1].order.id }
    }
}
