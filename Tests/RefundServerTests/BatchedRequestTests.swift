import DaemonTestSupport
import Foundation
import Testing

// The hot path over the socket: lines read together run as one batch (one engine call), and each still answers
// what it would alone; `order.put_many` loads many orders in one request with a terse answer.
@Suite("refundd: batched reads and order.put_many")
struct BatchedRequestTests {
    /// Many requests about one order in one write: they run in the order sent, each seeing the one before it
    /// finished (the refund's gateway answer included), and the answers come back in that order.
    @Test("one write of put, create, get, refund.get, create about one order answers as one at a time")
    func sameOrderInOneRead() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        let lines = [
            #"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("ord_b1"))}"#,
            #"{"id":2,"op":"refund.create","order_id":"ord_b1","lines":["a"],"method":"original","reason":"x"}"#,
            #"{"id":3,"op":"order.get","order_id":"ord_b1"}"#,
            #"{"id":4,"op":"refund.get","refund_id":"rf_1_ord_b1"}"#,
            #"{"id":5,"op":"refund.create","order_id":"ord_b1","lines":["a"],"method":"original","reason":"x"}"#,
            #"{"id":6,"op":"refund.create","order_id":"ord_b1","lines":["b"],"method":"original","reason":"x"}"#,
            #"{"id":7,"op":"order.get","order_id":"ord_b1"}"#,
            #"{"id":8,"op":"order.put","order":\#(simpleOrderJSON("ord_b1"))}"#,
        ]
        #expect(c.send(bytes: Array(lines.map { $0 + "\n" }.joined().utf8)))
        var answers: [Int: [String: Any]] = [:]
        var order: [Int] = []
        for _ in lines {
            let answer = try c.readObject()
            let id = try #require(answer["id"] as? Int)
            answers[id] = answer
            order.append(id)
        }
        #expect(order == order.sorted(), "answers of one read come back in the order sent: \(order)")
        func result(_ id: Int) -> [String: Any] { answers[id]?["result"] as? [String: Any] ?? [:] }
        func code(_ id: Int) -> String? { (answers[id]?["error"] as? [String: Any])?["code"] as? String }
        #expect(result(2)["status"] as? String == "succeeded")
        #expect((result(3)["tenders"] as? [[String: Any]])?.first?["refunded"] as? Int == 2000)
        #expect(result(4)["status"] as? String == "succeeded")
        #expect(code(5) == "already_refunded")
        #expect(result(6)["id"] as? String == "rf_2_ord_b1" && result(6)["status"] as? String == "succeeded")
        #expect(result(7)["status"] as? String == "refunded")
        #expect(code(8) == nil, "the same content again is accepted: \(answers[8] ?? [:])")
        daemon.stop()
    }

    @Test("order.put_many: per-order refusals by index, a re-send changes nothing, a field error refuses all")
    func putMany() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        let badHandle = simpleOrderJSON("ord m3")  // a space: not a valid handle
        let batch = #"{"id":1,"op":"order.put_many","orders":[\#(simpleOrderJSON("ord_m1")),\#(badHandle),\#(orderJSON("ord_m2"))]}"#
        let first = try c.ok(batch)
        #expect(first["accepted"] as? Int == 2)
        let rejected = first["rejected"] as? [[String: Any]]
        #expect(rejected?.count == 1 && rejected?.first?["index"] as? Int == 1)
        #expect(rejected?.first?["code"] as? String == "invalid_handle" && rejected?.first?["order_id"] as? String == "ord m3")
        _ = try c.ok(#"{"id":2,"op":"refund.create","order_id":"ord_m1","lines":["a"],"method":"offline","reason":"x"}"#)
        // A re-run of the same import: accepted again, nothing doubled, the refunded order untouched.
        let again = try c.ok(batch)
        #expect(again["accepted"] as? Int == 2)
        let view = try c.ok(#"{"id":3,"op":"order.get","order_id":"ord_m1"}"#)
        #expect((view["refunds"] as? [Any])?.count == 1)
        // Changed content of an order with a refund: that order alone is refused.
        let changed = simpleOrderJSON("ord_m1").replacingOccurrences(of: "cus_ord_m1", with: "cus_other")
        let partly = try c.ok(#"{"id":4,"op":"order.put_many","orders":[\#(changed),\#(simpleOrderJSON("ord_m4"))]}"#)
        #expect(partly["accepted"] as? Int == 1)
        #expect((partly["rejected"] as? [[String: Any]])?.first?["code"] as? String == "order_immutable")
        // A misspelt field anywhere: the whole request is refused, with the path, and nothing is stored.
        let misspelt = simpleOrderJSON("ord_m6").replacingOccurrences(of: "\"price\":2000}", with: "\"price\":2000,\"prcie\":1}")
        let error = try c.fails(
            #"{"id":5,"op":"order.put_many","orders":[\#(simpleOrderJSON("ord_m5")),\#(misspelt)]}"#, "invalid_field")
        let message = (error["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("orders[1].lines[0].prcie"), "\(message)")
        try c.fails(#"{"id":6,"op":"order.get","order_id":"ord_m5"}"#, "order_not_found")
        try c.fails(#"{"id":7,"op":"order.put_many","orders":[]}"#, "invalid_field")
        try c.fails(#"{"id":8,"op":"order.put_many","orders":{}}"#, "invalid_field")
        daemon.stop()
    }

    @Test("order.list over the socket: filters, pages by cursor, strict about its fields")
    func orderList() throws {
        let daemon = try Daemon(["--partitions", "3"])
        let c = try LineClient(port: daemon.port)
        var orders: [String] = []
        for i in 1...25 { orders.append(simpleOrderJSON("ord_l\(String(format: "%02d", i))", event: i % 2 == 0 ? "evt_even" : "evt_odd")) }
        _ = try c.ok(#"{"id":1,"op":"order.put_many","orders":[\#(orders.joined(separator: ","))]}"#)
        _ = try c.ok(#"{"id":2,"op":"refund.create","order_id":"ord_l04","lines":["a"],"method":"offline","reason":"x"}"#)
        _ = try c.ok(#"{"id":3,"op":"dispute.open","order_id":"ord_l06"}"#)
        var ids: [String] = []
        var cursor = "null"
        repeat {
            let page = try c.ok(#"{"id":4,"op":"order.list","event":"evt_even","limit":5,"cursor":\#(cursor)}"#)
            ids += (page["orders"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            cursor = (page["next_cursor"] as? String).map { "\"\($0)\"" } ?? "null"
        } while cursor != "null"
        #expect(ids == (1...12).map { "ord_l" + String(format: "%02d", $0 * 2) })
        let partly = try c.ok(#"{"id":5,"op":"order.list","status":"partially_refunded"}"#)
        let row = (partly["orders"] as? [[String: Any]])?.first
        #expect((partly["orders"] as? [Any])?.count == 1 && row?["id"] as? String == "ord_l04")
        #expect(row?["refunded"] as? Int == 2000 && row?["gross"] as? Int == 4000 && row?["refunds"] as? Int == 1)
        let disputed = try c.ok(#"{"id":6,"op":"order.list","disputed":true,"event":"evt_even"}"#)
        #expect((disputed["orders"] as? [[String: Any]])?.map { $0["id"] as? String } == ["ord_l06"])
        try c.fails(#"{"id":7,"op":"order.list","status":"done"}"#, "invalid_field")
        try c.fails(#"{"id":8,"op":"order.list","evnet":"evt_even"}"#, "invalid_field")
        try c.fails(#"{"id":9,"op":"order.list","cursor":"p1.0.0.0"}"#, "invalid_field")
        daemon.stop()
    }
}

@Suite("refundd: the order timeline")
struct TimelineProtocolTests {
    @Test("order.timeline shows amounts, methods, fees, actors and notes")
    func timelineFacts() throws {
        let daemon = try Daemon(["--partitions", "1"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("ord_t"))}"#)
        _ = try c.ok(#"{"id":2,"op":"order.cancel","order_id":"ord_t","lines":["a"],"reason":"fraud","note":"duplicate order","actor":{"id":"ops_1","permissions":["cancel","refund"]}}"#)
        _ = try c.ok(#"{"id":3,"op":"dispute.open","order_id":"ord_t","reason":"fraud"}"#)
        _ = try c.ok(#"{"id":4,"op":"dispute.close","order_id":"ord_t","outcome":"lost","note":"no evidence"}"#)
        let result = try c.ok(#"{"id":5,"op":"order.timeline","order_id":"ord_t"}"#)
        let entries = result["timeline"] as? [[String: Any]] ?? []
        let refund = try #require(entries.first { $0["kind"] as? String == "refund.created" })
        #expect(refund["amount"] as? Int == 2000 && refund["method"] as? String == "original")
        #expect(refund["note"] as? String == "duplicate order" && refund["by"] as? String == "ops_1")
        #expect(refund["currency"] as? String == "GBP" && refund["fee_retained"] as? Int == 0)
        let closed = try #require(entries.first { $0["kind"] as? String == "dispute.closed" })
        #expect(closed["note"] as? String == "no evidence" && closed["detail"] as? String == "lost")
        daemon.stop()
    }
}

@Suite("refundd: the self-service cutoff")
struct SelfServiceCutoffTests {
    /// An order whose event starts in two hours: closed under the default 24-hour cutoff (the message names the
    /// rule), open under `--self-service-cutoff-hours 1`.
    @Test("--self-service-cutoff-hours moves the cutoff; the refusal names the rule")
    func cutoffFlag() throws {
        let starts = ISO8601DateFormatter().string(from: Date().addingTimeInterval(2 * 3600))
        let order = #"{"id":"ord_ss","event":"evt_ss","event_starts_at":"\#(starts)","customer":"cus_ss","currency":"GBP","lines":[{"id":"l1","ticket_type":"tt","price":2000}],"tenders":[{"id":"t1","method":"card","amount":2000}]}"#
        let request = #"{"id":2,"op":"refund.create","order_id":"ord_ss","method":"balance","reason":"cannot_attend","self_service":true,"actor":{"id":"cus_ss","permissions":["self_service"]}}"#
        for (arguments, open) in [([String](), false), (["--self-service-cutoff-hours", "1"], true)] {
            let daemon = try Daemon(["--partitions", "1"] + arguments)
            let c = try LineClient(port: daemon.port)
            _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(order)}"#)
            if open {
                let refund = try c.ok(request)
                #expect(refund["method"] as? String == "balance")
            } else {
                let refused = try c.fails(request, "self_service_closed")
                let message = (refused["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(message.contains("closes 24 h before the event"), "\(message)")
            }
            daemon.stop()
        }
    }
}
