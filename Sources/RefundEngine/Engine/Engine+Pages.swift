import RefundCore

/// A page of a list, and where the next one starts.
public struct ListPage<Item: Sendable>: Sendable {
    public var items: [Item]
    /// Pass it as `after` to get the next page; nil when nothing follows this page.
    public var next: String?

    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}

/// Paged lists: `order.list`, `refund.list`, `refund.attention` and `refund.requests` of the protocol. A page holds at most
/// ``Engine/maximumPageSize`` items; its `next` cursor (an opaque string) continues after its last item.
///
/// A list is not a snapshot: items added while a client pages through it may or may not appear (an item is never
/// given twice, and an item present for the whole paging is never missed). Cursors stay valid across restarts of
/// the same data directory and partition count.
extension Engine {
    /// The most items a page holds.
    public static let maximumPageSize = 1000

    /// `refund.list`: the refunds of an order, or of an event, or all, optionally with one status, a page at a time.
    public func refundPage(
        orderID: String? = nil, event: String? = nil, status: TransactionStatus? = nil, limit: Int = maximumPageSize,
        after cursor: String? = nil
    ) async throws(RefundError) -> ListPage<Refund> {
        let limit = Self.pageSize(limit)
        if let orderID {
            let start = try cursor.map { text throws(RefundError) in try Self.orderCursor(text) } ?? 0
            let refunds = try await order(orderID).refunds.enumerated().filter { status == nil || $0.element.status == status }
            let page = refunds.drop { $0.offset < start }.prefix(limit + 1)
            let items = page.prefix(limit)
            let next = page.count > limit ? items.last.map { "o1.\($0.offset + 1)" } : nil
            return ListPage(items: items.map(\.element), next: next)
        }
        return try await scan(after: cursor, limit: limit) { partition, from, count in
            await partition.refundPage(event: event, status: status, from: from, limit: count)
        }
    }

    /// `refund.attention`: failed refunds not yet retried successfully or recovered, a page at a time.
    public func attentionPage(limit: Int = maximumPageSize, after cursor: String? = nil) async throws(RefundError)
        -> ListPage<Refund>
    {
        try await scan(after: cursor, limit: Self.pageSize(limit)) { partition, from, count in
            await partition.attentionPage(from: from, limit: count)
        }
    }

    /// `refund.requests`: open buyer requests, oldest first (by creation time, then id), a page at a time.
    public func openRequestPage(limit: Int = maximumPageSize, after cursor: String? = nil) async throws(RefundError)
        -> ListPage<RefundRequest>
    {
        let limit = Self.pageSize(limit)
        let after = try cursor.map { text throws(RefundError) in try Self.requestCursor(text) }
        var open = await gather { await $0.openRequestPage(after: after, limit: limit + 1) }
        open.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        let items = Array(open.prefix(limit))
        let next = open.count > limit ? items.last.map { "q1.\($0.createdAt.milliseconds).\($0.id)" } : nil
        return ListPage(items: items, next: next)
    }

    /// `order.list`: orders matching `filter`, sorted by id, a page at a time. Each partition reads its smallest
    /// index the filter names (event, customer, email; else the orders with a pending or failed refund, the
    /// disputed ones, or one status), so a page costs the page, not a scan of every order. Cursor text:
    /// `i1.<last order id of the page>`.
    public func orderPage(_ filter: OrderFilter, limit: Int = maximumPageSize, after cursor: String? = nil)
        async throws(RefundError) -> ListPage<OrderSummary>
    {
        let limit = Self.pageSize(limit)
        let after = try cursor.map { text throws(RefundError) in try Self.orderIDCursor(text) }
        var found = await gather { await $0.orderPage(filter, after: after, limit: limit + 1) }
        found.sort { $0.id < $1.id }
        let items = Array(found.prefix(limit))
        let next = found.count > limit ? items.last.map { "i1.\($0.id)" } : nil
        return ListPage(items: items, next: next)
    }

    // MARK: Scans across partitions

    static func pageSize(_ limit: Int) -> Int { min(max(1, limit), maximumPageSize) }

    /// Partition by partition from the cursor's position, until `limit` items and one more (to know whether a
    /// next page exists). Cursor text: `p1.<partition>.<slot>.<index>`, the position of the next item.
    private func scan<Item: Sendable>(
        after cursor: String?, limit: Int,
        _ page: @Sendable (Partition, Partition.ScanPosition, Int) async -> [(Item, Partition.ScanPosition)]
    ) async throws(RefundError) -> ListPage<Item> {
        var (partition, position) = try cursor.map { text throws(RefundError) in try scanCursor(text) } ?? (0, .start)
        var found: [(Item, partition: Int, Partition.ScanPosition)] = []
        while partition < partitions.count && found.count <= limit {
            for (item, at) in await page(partitions[partition], position, limit + 1 - found.count) {
                found.append((item, partition, at))
            }
            partition += 1
            position = .start
        }
        await readBarrier()
        let items = found.prefix(limit)
        let next = found.count > limit ? items.last.map { "p1.\($0.partition).\($0.2.slot).\($0.2.index + 1)" } : nil
        return ListPage(items: items.map(\.0), next: next)
    }

    private func scanCursor(_ text: String) throws(RefundError) -> (Int, Partition.ScanPosition) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "p1", let partition = Int(parts[1]), let slot = Int(parts[2]),
            let index = Int(parts[3]), (0..<partitions.count).contains(partition), slot >= 0, index >= 0
        else { throw Self.badCursor(text) }
        return (partition, Partition.ScanPosition(slot: slot, index: index))
    }

    private static func orderIDCursor(_ text: String) throws(RefundError) -> String {
        guard text.hasPrefix("i1."), text.count > 3 else { throw badCursor(text) }
        return String(text.dropFirst(3))
    }

    private static func orderCursor(_ text: String) throws(RefundError) -> Int {
        guard text.hasPrefix("o1."), let index = Int(text.dropFirst(3)), index >= 0 else { throw badCursor(text) }
        return index
    }

    private static func requestCursor(_ text: String) throws(RefundError) -> (createdAt: Timestamp, id: String) {
        let parts = text.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "q1", let milliseconds = Int64(parts[1]), !parts[2].isEmpty else {
            throw badCursor(text)
        }
        return (Timestamp(milliseconds: milliseconds), String(parts[2]))
    }

    private static func badCursor(_ text: String) -> RefundError {
        RefundError(.invalidField, "cursor '\(text.prefix(64))' is not one this list gave out")
    }
}
