import DaemonTestSupport
import Foundation
import Testing

/// `order.transfer` and line holders over the socket.
@Suite("ticket holders and transfers over a socket")
struct TicketTransferProtocolTests {
    static func order(_ id: String) -> String {
        #"""
        {"id":"\#(id)","event":"evt_1","event_starts_at":"2030-12-01T19:00:00Z","customer":"cus_9","currency":"GBP","lines":[{"id":"l1","price":5000},{"id":"l2","price":5000,"holder":"att_1"}],"tenders":[{"id":"t1","method":"card","amount":10000}]}
        """#
    }

    static func line(_ view: [String: Any], _ index: Int) -> [String: Any] {
        (view["lines"] as? [[String: Any]])?[index] ?? [:]
    }

    @Test("a holder named at checkout, a transfer away that blocks the refund, and back: refundable again")
    func transferAwayAndBack() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        let placed = try c.ok(#"{"id":1,"op":"order.put","order":\#(Self.order("ord_1"))}"#)
        #expect(Self.line(placed, 0)["holder_state"] as? String == "purchaser")
        #expect(Self.line(placed, 1)["holder_state"] as? String == "designated")
        #expect(Self.line(placed, 1)["holder"] as? String == "att_1")
        let order = placed["order"] as? [String: Any]
        #expect((order?["lines"] as? [[String: Any]])?[1]["holder"] as? String == "att_1")

        let away = try c.ok(#"{"id":2,"op":"order.transfer","order_id":"ord_1","line":"l1","to":"att_2","actor":{"id":"box_office"}}"#)
        #expect(Self.line(away, 0)["holder_state"] as? String == "transferred")
        let moves = Self.line(away, 0)["transfers"] as? [[String: Any]]
        #expect(moves?.count == 1)
        #expect(moves?.first?["to"] as? String == "att_2" && moves?.first?["from"] == nil && moves?.first?["by"] as? String == "box_office")
        try c.fails(
            #"{"id":3,"op":"refund.create","order_id":"ord_1","lines":["l1"],"method":"offline","reason":"x"}"#,
            "transferred_after_checkout")

        let back = try c.ok(#"{"id":4,"op":"order.transfer","order_id":"ord_1","line":"l1","to":null}"#)
        #expect(Self.line(back, 0)["holder_state"] as? String == "purchaser")
        #expect((Self.line(back, 0)["transfers"] as? [[String: Any]])?.count == 2)
        _ = try c.ok(#"{"id":5,"op":"refund.create","order_id":"ord_1","lines":["l1"],"method":"offline","reason":"x"}"#)
        // Moves are in the timeline too.
        let timeline = try c.ok(#"{"id":6,"op":"order.timeline","order_id":"ord_1"}"#)
        let kinds = (timeline["timeline"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } ?? []
        #expect(kinds.filter { $0 == "ticket.transferred" }.count == 2)
    }

    @Test("a transfer request missing `to`, with a field the op does not know, or a refunded line, changes nothing")
    func strictTransfers() throws {
        let daemon = try Daemon(["--partitions", "1"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(Self.order("ord_1"))}"#)
        try c.fails(#"{"id":2,"op":"order.transfer","order_id":"ord_1","line":"l1"}"#, "missing_field")
        try c.fails(#"{"id":3,"op":"order.transfer","order_id":"ord_1","line":"l1","to":"a","when":"now"}"#, "invalid_field")
        try c.fails(#"{"id":4,"op":"order.transfer","order_id":"ord_1","line":"l1","to":7}"#, "invalid_field")
        try c.fails(#"{"id":5,"op":"order.transfer","order_id":"ord_1","line":"l9","to":"a"}"#, "line_not_found")
        try c.fails(
            #"{"id":6,"op":"order.transfer","order_id":"ord_1","line":"l1","to":"a","actor":{"id":"x","permissions":["read"]}}"#,
            "permission_denied")
        _ = try c.ok(#"{"id":7,"op":"refund.create","order_id":"ord_1","lines":["l1"],"method":"offline","reason":"x"}"#)
        try c.fails(#"{"id":8,"op":"order.transfer","order_id":"ord_1","line":"l1","to":"a"}"#, "invalid_state")
        let view = try c.ok(#"{"id":9,"op":"order.get","order_id":"ord_1"}"#)
        #expect(Self.line(view, 0)["transfers"] == nil)
        #expect(Self.line(view, 1)["holder"] as? String == "att_1")
    }
}

@Suite("members-only events over a socket")
struct MembersOnlyProtocolTests {
    @Test("event.put members_only: a ticket does not go back to a purchaser holding another")
    func membersOnly() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        let settings = try c.ok(#"{"id":1,"op":"event.put","event":"evt_1","members_only":true}"#)
        #expect(settings["members_only"] as? Bool == true)
        #expect(try c.ok(#"{"id":2,"op":"event.get","event":"evt_1"}"#)["members_only"] as? Bool == true)
        _ = try c.ok(#"{"id":3,"op":"order.put","order":\#(TicketTransferProtocolTests.order("ord_1"))}"#)
        // cus_9 bought two tickets; l2 is att_1's, l1 goes to att_2: cus_9 holds none, so l1 may come back...
        _ = try c.ok(#"{"id":4,"op":"order.transfer","order_id":"ord_1","line":"l1","to":"att_2"}"#)
        // ...unless cus_9 holds another: l2 comes to them first.
        _ = try c.ok(#"{"id":5,"op":"order.transfer","order_id":"ord_1","line":"l2","to":"cus_9"}"#)
        try c.fails(#"{"id":6,"op":"order.transfer","order_id":"ord_1","line":"l1","to":null}"#, "transfer_back_blocked")
        try c.fails(#"{"id":7,"op":"event.put","event":"evt_1","members_only":"yes"}"#, "invalid_field")
    }
}

@Suite("pending ticket transfers over a socket")
struct PendingTransferProtocolTests {
    @Test("a pending transfer blocks the buyer's own refund until accepted or cancelled")
    func pendingThenDecided() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(TicketTransferProtocolTests.order("ord_1"))}"#)
        let asked = try c.ok(#"{"id":2,"op":"order.transfer","order_id":"ord_1","line":"l1","to":"att_2","pending":true}"#)
        let line = TicketTransferProtocolTests.line(asked, 0)
        #expect(line["holder_state"] as? String == "purchaser")
        #expect((line["transfers"] as? [[String: Any]])?.first?["status"] as? String == "pending")
        try c.fails(
            #"{"id":3,"op":"refund.create","order_id":"ord_1","lines":["l1"],"method":"balance","reason":"customer_request","self_service":true,"actor":{"id":"cus_9","permissions":["self_service"]}}"#,
            "transfer_pending")
        try c.fails(#"{"id":4,"op":"order.transfer","order_id":"ord_1","line":"l1","to":"att_3"}"#, "invalid_state")
        try c.fails(#"{"id":5,"op":"transfer.accept","order_id":"ord_1","line":"l2"}"#, "invalid_state")
        let accepted = try c.ok(#"{"id":6,"op":"transfer.accept","order_id":"ord_1","line":"l1","actor":{"id":"att_2"}}"#)
        let moved = TicketTransferProtocolTests.line(accepted, 0)
        #expect(moved["holder"] as? String == "att_2" && moved["holder_state"] as? String == "transferred")
        let transfer = (moved["transfers"] as? [[String: Any]])?.first
        #expect(transfer?["status"] as? String == "completed" && transfer?["decided_by"] as? String == "att_2")
        #expect(transfer?["decided_at"] as? String != nil)
        _ = try c.ok(#"{"id":7,"op":"order.transfer","order_id":"ord_1","line":"l1","to":null,"pending":true}"#)
        let cancelled = try c.ok(#"{"id":8,"op":"transfer.cancel","order_id":"ord_1","line":"l1"}"#)
        #expect(TicketTransferProtocolTests.line(cancelled, 0)["holder"] as? String == "att_2")
        try c.fails(#"{"id":9,"op":"transfer.cancel","order_id":"ord_1","line":"l1","to":"x"}"#, "invalid_field")
        try c.fails(
            #"{"id":10,"op":"transfer.accept","order_id":"ord_1","line":"l1","actor":{"id":"x","permissions":["read"]}}"#,
            "permission_denied")
    }
}
