import DaemonTestSupport
import Foundation
import RefundCore
import RefundEngine
import Testing

/// Issue 13 item 2: large lists come a page at a time (at most 1,000 items), with a cursor to continue.
@Suite("list paging")
struct PagingTests {
    /// Follows `next_cursor` from the first page; returns every page's ids.
    static func pages(_ c: LineClient, _ request: String, key: String = "refunds") throws -> [[String]] {
        var pages: [[String]] = []
        var cursor: String?
        repeat {
            let cursorField = cursor.map { #","cursor":"\#($0)""# } ?? ""
            let result = try c.ok(String(request.dropLast()) + cursorField + "}")
            let items = try #require(result[key] as? [[String: Any]], "\(result)")
            pages.append(items.compactMap { $0["id"] as? String })
            #expect(result.keys.contains("next_cursor"), "\(result.keys)")
            cursor = result["next_cursor"] as? String
        } while cursor != nil && pages.count < 100
        return pages
    }

    @Test("refund.list, refund.attention and refund.requests page with limit and cursor over the socket")
    func pagingOverTheSocket() throws {
        let daemon = try Daemon(["--partitions", "3", "--gateway", "external"])
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        var lines = ""
        for i in 0..<25 {
            let id = "pg_\(i)"
            lines += #"{"id":"o\#(i)","op":"order.put","order":\#(simpleOrderJSON(id, event: i < 12 ? "evt_a" : "evt_b"))}"# + "\n"
            lines += #"{"id":"r\#(i)","op":"refund.create","order_id":"\#(id)","method":"original","reason":"r"}"# + "\n"
        }
        for i in 0..<6 {
            lines += #"{"id":"q\#(i)","op":"order.put","order":\#(simpleOrderJSON("rq_" + String(i), event: "evt_c"))}"# + "\n"
        }
        #expect(c.send(bytes: Array(lines.utf8)))
        for _ in 0..<56 { _ = try c.readObject() }
        // Seven card refunds fail: the attention queue.
        for i in 0..<7 {
            _ = try c.ok(#"{"id":"f\#(i)","op":"refund.settle","refund_id":"rf_1_pg_\#(i * 3)","tender":"t1","succeeded":false}"#)
        }
        // Six open buyer requests.
        for i in 0..<6 {
            _ = try c.ok(
                #"{"id":"b\#(i)","op":"refund.request","order_id":"rq_\#(i)","reason":"cannot go","actor":{"id":"cus_rq_\#(i)","permissions":["self_service"]}}"#
            )
        }

        let all = try Self.pages(c, #"{"id":1,"op":"refund.list","limit":10}"#)
        #expect(all.map(\.count) == [10, 10, 5])
        #expect(Set(all.joined()).count == 25 && all.joined().count == 25)
        #expect(Set(all.joined()) == Set((0..<25).map { "rf_1_pg_\($0)" }))
        let eventB = try Self.pages(c, #"{"id":2,"op":"refund.list","event":"evt_b","limit":5}"#)
        #expect(eventB.map(\.count) == [5, 5, 3])
        #expect(Set(eventB.joined()) == Set((12..<25).map { "rf_1_pg_\($0)" }))
        let pending = try Self.pages(c, #"{"id":3,"op":"refund.list","status":"pending","limit":4}"#)
        #expect(pending.map(\.count) == [4, 4, 4, 4, 2])
        let attention = try Self.pages(c, #"{"id":4,"op":"refund.attention","limit":3}"#)
        #expect(attention.map(\.count) == [3, 3, 1])
        #expect(Set(attention.joined()) == Set((0..<7).map { "rf_1_pg_\($0 * 3)" }))
        let requests = try Self.pages(c, #"{"id":5,"op":"refund.requests","limit":4}"#, key: "requests")
        #expect(requests.map(\.count) == [4, 2])
        #expect(Set(requests.joined()).count == 6)
        // A limit above the most a page holds is served as that (old clients asked for up to 10,000).
        let big = try c.ok(#"{"id":6,"op":"refund.list","limit":10000}"#)
        #expect((big["refunds"] as? [Any])?.count == 25 && big["next_cursor"] is NSNull, "\(big.keys)")
        // One order's refunds page too.
        _ = try c.ok(#"{"id":7,"op":"order.put","order":\#(simpleOrderJSON("two"))}"#)
        _ = try c.ok(#"{"id":8,"op":"refund.create","order_id":"two","lines":["a"],"method":"offline","reason":"r"}"#)
        _ = try c.ok(#"{"id":9,"op":"refund.create","order_id":"two","lines":["b"],"method":"offline","reason":"r"}"#)
        let two = try Self.pages(c, #"{"id":10,"op":"refund.list","order_id":"two","limit":1}"#)
        #expect(two == [["rf_1_two"], ["rf_2_two"]])
        // A cursor is the server's to give: anything else is refused; events.list pages with `after`.
        try c.fails(#"{"id":11,"op":"refund.list","cursor":"p1.99.0.0"}"#, "invalid_field")
        try c.fails(#"{"id":12,"op":"refund.list","cursor":"nope"}"#, "invalid_field")
        try c.fails(#"{"id":13,"op":"refund.requests","cursor":7}"#, "invalid_field")
        try c.fails(#"{"id":14,"op":"events.list","cursor":"p1.0.0.0"}"#, "invalid_field")
        try c.fails(#"{"id":15,"op":"refund.list","limit":0}"#, "invalid_field")
    }

    @Test("a page holds at most 1,000 refunds; the cursor gives the rest, once each")
    func maximumPage() async throws {
        let engine = Engine(configuration: EngineConfiguration(partitions: 2), gateway: SimulatedGateway())
        for i in 0..<1003 {
            let order = Order(
                id: "m_\(i)", event: "evt_m", currency: .gbp,
                lines: [OrderLine(id: "l1", ticketType: "tt", price: 1000)],
                tenders: [Tender(id: "t1", method: .cash, amount: 1000)])
            try await engine.putOrder(order)
            _ = try await engine.createRefund(
                orderID: order.id, RefundOptions(method: .offline, reason: "r"), caller: .staff("ops"))
        }
        let first = try await engine.refundPage(event: "evt_m", limit: 5000)
        #expect(first.items.count == 1000)
        let next = try #require(first.next)
        let second = try await engine.refundPage(event: "evt_m", limit: 5000, after: next)
        #expect(second.items.count == 3 && second.next == nil)
        #expect(Set((first.items + second.items).map(\.id)).count == 1003)
        // Without a filter the same: every refund once.
        let all = try await engine.refundPage(limit: 1000)
        let rest = try await engine.refundPage(limit: 1000, after: all.next)
        #expect(Set((all.items + rest.items).map(\.id)).count == 1003 && rest.next == nil)
    }
}
