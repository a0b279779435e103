import RefundCore

/// Paged reads (see `Engine+Pages.swift`): each returns up to `limit` items in the partition's scan order, starting
/// at a position, with each item's position so the engine can say where the next page starts.
///
/// The scan order is the order slots were created in (an order's slot never changes, across restarts too: a
/// snapshot keeps them in order and replay appends in log order), then the order's refunds or requests in order.
extension Partition {
    /// Where an item is: its order's slot and its index among that order's refunds or requests.
    struct ScanPosition: Sendable, Hashable, Comparable {
        var slot: Int
        var index: Int

        static let start = ScanPosition(slot: 0, index: 0)

        static func < (a: ScanPosition, b: ScanPosition) -> Bool { (a.slot, a.index) < (b.slot, b.index) }
    }

    /// `refund.list` without an order: refunds (of `event`, with `status`) at or after `from`.
    func refundPage(event: String?, status: TransactionStatus?, from: ScanPosition, limit: Int) -> [(Refund, ScanPosition)] {
        var out: [(Refund, ScanPosition)] = []
        func scan(_ slot: Int) -> Bool {
            let refunds = states[slot].refunds
            var index = slot == from.slot ? from.index : 0
            while index < refunds.count {
                if status == nil || refunds[index].status == status {
                    out.append((refunds[index], ScanPosition(slot: slot, index: index)))
                    if out.count >= limit { return false }
                }
                index += 1
            }
            return true
        }
        if let event {
            // The event's slots are kept in ascending order (see `insertSorted`): start at the first at `from`.
            let slots = byEvent[event] ?? []
            var i = slots.firstIndex(atOrAbove: from.slot)
            while i < slots.count, scan(slots[i]) { i += 1 }
        } else {
            var slot = max(0, from.slot)
            while slot < states.count, scan(slot) { slot += 1 }
        }
        return out
    }

    /// `refund.attention`: refunds that need attention at or after `from`.
    func attentionPage(from: ScanPosition, limit: Int) -> [(Refund, ScanPosition)] {
        var out: [(Refund, ScanPosition)] = []
        var slot = max(0, from.slot)
        while slot < states.count {
            let refunds = states[slot].refunds
            var index = slot == from.slot ? from.index : 0
            while index < refunds.count {
                if refunds[index].needsAttention {
                    out.append((refunds[index], ScanPosition(slot: slot, index: index)))
                    if out.count >= limit { return out }
                }
                index += 1
            }
            slot += 1
        }
        return out
    }

    /// `refund.requests`: the `limit` oldest open requests (by creation time, then id) after `after`.
    func openRequestPage(after: (createdAt: Timestamp, id: String)?, limit: Int) -> [RefundRequest] {
        var open: [RefundRequest] = []
        for state in states {
            for request in state.requests where request.status == .open {
                if let after, (request.createdAt, request.id) <= (after.createdAt, after.id) { continue }
                open.append(request)
            }
        }
        open.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        return Array(open.prefix(limit))
    }
}

extension Array where Element == Int {
    /// The index of the first element at or above `value` (the array ascending).
    func firstIndex(atOrAbove value: Int) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if self[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Inserts `value` where it keeps the array ascending.
    mutating func insertSorted(_ value: Int) {
        insert(value, at: firstIndex(atOrAbove: value))
    }
}
