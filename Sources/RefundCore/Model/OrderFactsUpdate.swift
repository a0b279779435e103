/// `order.update`: the facts of an order that are not money, which may change after refunds (the checkout or a
/// sync reports them): the order frozen or waiting for a sync, a line's ticket transferred to someone else after
/// checkout, a gift voucher claimed. Fields left nil keep their value. Money (prices, fees, tenders) never
/// changes this way: a refund is how money moves.
public struct OrderFactsUpdate: Sendable, Equatable, Hashable, Codable {
    /// One line's facts.
    public struct Line: Sendable, Equatable, Hashable, Codable {
        public var id: String
        /// The ticket was transferred to someone else after checkout (`transferred_after_checkout` blocks its
        /// refund); false once it is back with the purchaser.
        public var transferred: Bool?
        /// The gift voucher has been claimed (`gift_voucher_claimed`).
        public var claimed: Bool?

        public init(id: String, transferred: Bool? = nil, claimed: Bool? = nil) {
            self.id = id
            self.transferred = transferred
            self.claimed = claimed
        }
    }

    public var frozen: Bool?
    public var syncPending: Bool?
    public var lines: [Line]

    public init(frozen: Bool? = nil, syncPending: Bool? = nil, lines: [Line] = []) {
        self.frozen = frozen
        self.syncPending = syncPending
        self.lines = lines
    }

    enum CodingKeys: String, CodingKey {
        case frozen, lines
        case syncPending = "sync_pending"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        frozen = try c.decodeIfPresent(Bool.self, forKey: .frozen)
        syncPending = try c.decodeIfPresent(Bool.self, forKey: .syncPending)
        lines = try c.decodeIfPresent([Line].self, forKey: .lines) ?? []
    }

    /// Throws `missing_field` for an update that names nothing, `line_not_found` / `duplicate_id` for its lines.
    public func validate(against order: Order) throws(RefundError) {
        guard frozen != nil || syncPending != nil || !lines.isEmpty else {
            throw RefundError(.missingField, "order.update names nothing to change (frozen, sync_pending or lines)")
        }
        var seen = Set<String>()
        for (i, line) in lines.enumerated() {
            guard order.lineIndex(line.id) != nil else {
                throw RefundError(.lineNotFound, "lines[\(i)]: order \(order.id) has no line '\(line.id.prefix(128))'")
            }
            guard seen.insert(line.id).inserted else {
                throw RefundError(.duplicateID, "lines[\(i)]: line '\(line.id.prefix(128))' is named twice")
            }
            guard line.transferred != nil || line.claimed != nil else {
                throw RefundError(.missingField, "lines[\(i)]: name transferred or claimed")
            }
        }
    }

    /// `order` with these facts.
    public func applied(to order: Order) -> Order {
        var updated = order
        if let frozen { updated.frozen = frozen }
        if let syncPending { updated.syncPending = syncPending }
        for line in lines {
            guard let index = updated.lineIndex(line.id) else { continue }
            if let transferred = line.transferred {
                updated.lines[index].transferred = transferred
                // Back with the purchaser: nobody else holds it (a holder kept here would read as designated).
                if !transferred { updated.lines[index].holder = nil }
            }
            if let claimed = line.claimed { updated.lines[index].claimed = claimed }
        }
        return updated
    }

    /// What changed, for the timeline: `frozen=false, l1.transferred=false`.
    public var summary: String {
        var parts: [String] = []
        if let frozen { parts.append("frozen=\(frozen)") }
        if let syncPending { parts.append("sync_pending=\(syncPending)") }
        for line in lines {
            if let transferred = line.transferred { parts.append("\(line.id).transferred=\(transferred)") }
            if let claimed = line.claimed { parts.append("\(line.id).claimed=\(claimed)") }
        }
        return parts.joined(separator: ", ")
    }
}

extension OrderFactsUpdate {
    /// A fact on the wire: 0 unchanged, 1 false, 2 true.
    static func code(_ value: Bool?) -> UInt8 { value.map { $0 ? 2 : 1 } ?? 0 }

    /// The fact a wire code stands for (`.some(nil)`: unchanged); nil for a code that is none.
    static func fact(code: UInt8) -> Bool?? {
        switch code {
        case 0: .some(nil)
        case 1: .some(false)
        case 2: .some(true)
        default: nil
        }
    }
}
