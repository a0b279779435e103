import DaemonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("refundd over a socket")
struct ProtocolTests {
    @Test("every op of the contract answers over the socket")
    func everyOp() throws {
        // External gateway: card refunds stay pending until refund.settle, so settle/retry/recover are reachable.
        let daemon = try Daemon(["--gateway", "external", "--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        let events = try LineClient(port: daemon.port)
        let subscribed = try events.ok(#"{"id":"s","op":"events.subscribe","after":0}"#)
        #expect(subscribed["subscribed"] as? Bool == true)

        _ = try c.ok(#"{"id":1,"op":"ping"}"#)
        let stored = try c.ok(#"{"id":2,"op":"order.put","order":\#(orderJSON("ord_1"))}"#)
        #expect((stored["order"] as? [String: Any])?["id"] as? String == "ord_1")
        #expect(stored["status"] as? String == "completed")
        let got = try c.ok(#"{"id":3,"op":"order.get","order_id":"ord_1"}"#)
        #expect((got["totals"] as? [String: Any]) != nil)

        // Preview of the contract's worked example: refundable 4635, fee 500, tax 669, tenders 2540 / 1595.
        let preview = try c.ok(#"{"id":4,"op":"refund.preview","order_id":"ord_1","method":"original","fee":{"order":500}}"#)
        #expect(preview["amount"] as? Int == 4135)
        #expect(preview["fee_retained"] as? Int == 500)
        #expect(preview["tax"] as? Int == 669)
        let refund = try c.ok(
            #"{"id":5,"op":"refund.create","order_id":"ord_1","method":"original","fee":{"order":500},"reason":"event_cancelled","idempotency_key":"k1"}"#
        )
        #expect(refund["amount"] as? Int == 4135)
        #expect(refund["status"] as? String == "pending")  // the card part waits for refund.settle
        let amounts = (refund["transactions"] as? [[String: Any]])?.compactMap { $0["amount"] as? Int }
        #expect(amounts == [2540, 1595])
        let refundID = try #require(refund["id"] as? String)
        // The same idempotency key and parameters: the first result.
        let repeated = try c.ok(
            #"{"id":6,"op":"refund.create","order_id":"ord_1","method":"original","fee":{"order":500},"reason":"event_cancelled","idempotency_key":"k1"}"#
        )
        #expect(repeated["id"] as? String == refundID)
        try c.fails(#"{"id":7,"op":"refund.create","order_id":"ord_1","method":"offline","reason":"x"}"#, "nothing_to_refund")

        let settled = try c.ok(#"{"id":8,"op":"refund.settle","refund_id":"\#(refundID)","tender":"t1","succeeded":true}"#)
        #expect(settled["status"] as? String == "succeeded")
        _ = try c.ok(#"{"id":9,"op":"refund.get","refund_id":"\#(refundID)"}"#)
        let list = try c.ok(#"{"id":10,"op":"refund.list","order_id":"ord_1"}"#)
        #expect((list["refunds"] as? [Any])?.count == 1)
        let byEvent = try c.ok(#"{"id":11,"op":"refund.list","event":"evt_1","status":"succeeded"}"#)
        #expect((byEvent["refunds"] as? [Any])?.count == 1)
        let receipt = try c.ok(#"{"id":12,"op":"refund.receipt","refund_id":"\#(refundID)"}"#)
        #expect((receipt["text"] as? String)?.contains("Total refunded 41.35 GBP") == true)
        _ = try c.ok(#"{"id":13,"op":"refund.resend","refund_id":"\#(refundID)"}"#)
        let timeline = try c.ok(#"{"id":14,"op":"order.timeline","order_id":"ord_1"}"#)
        #expect(((timeline["timeline"] as? [Any])?.count ?? 0) >= 2)
        let balance = try c.ok(#"{"id":15,"op":"balance.get","customer":"cus_9","currency":"GBP"}"#)
        #expect(balance["balance"] != nil && balance["currency"] as? String == "GBP")
        let all = try c.ok(#"{"id":16,"op":"balance.get","customer":"cus_9"}"#)
        #expect((all["balances"] as? [String: Any])?["GBP"] != nil)
        try c.fails(#"{"id":17,"op":"balance.get","customer":"cus_9","currency":"XXQ"}"#, "invalid_currency")
        let inventory = try c.ok(#"{"id":16,"op":"inventory.get"}"#)
        #expect((inventory["released"] as? [String: Any])?["tt_ga"] as? Int == 1)

        // A failed settlement, the attention queue, a retry (pending again), a recovery.
        _ = try c.ok(#"{"id":20,"op":"order.put","order":\#(simpleOrderJSON("ord_2"))}"#)
        let second = try c.ok(
            #"{"id":21,"op":"refund.create","order_id":"ord_2","lines":["a"],"method":"original","reason":"customer_request"}"#)
        let secondID = try #require(second["id"] as? String)
        try c.fails(
            #"{"id":"21b","op":"refund.create","order_id":"ord_2","lines":["b"],"method":"offline","reason":"x"}"#,
            "refund_in_progress")
        let failed = try c.ok(
            #"{"id":22,"op":"refund.settle","refund_id":"\#(secondID)","tender":"t1","succeeded":false,"failure_code":"card_expired"}"#
        )
        #expect(failed["status"] as? String == "failed")
        let attention = try c.ok(#"{"id":23,"op":"refund.attention"}"#)
        #expect((attention["refunds"] as? [[String: Any]])?.contains { $0["id"] as? String == secondID } == true)
        let retried = try c.ok(#"{"id":24,"op":"refund.retry","refund_id":"\#(secondID)"}"#)
        #expect(retried["status"] as? String == "pending")
        _ = try c.ok(#"{"id":25,"op":"refund.settle","refund_id":"\#(secondID)","tender":"t1","succeeded":false}"#)
        try c.fails(#"{"id":26,"op":"refund.recover","refund_id":"\#(secondID)","action":"written_off"}"#, "missing_field")
        let recovered = try c.ok(
            #"{"id":27,"op":"refund.recover","refund_id":"\#(secondID)","action":"written_off","note":"small amount"}"#)
        #expect((recovered["recovery"] as? [String: Any])?["action"] as? String == "written_off")

        // Buyer requests: approve one, decline one.
        _ = try c.ok(#"{"id":30,"op":"order.put","order":\#(simpleOrderJSON("ord_3"))}"#)
        let customer = #""actor":{"id":"cus_ord_3","permissions":["self_service"]}"#
        let request = try c.ok(#"{"id":31,"op":"refund.request","order_id":"ord_3","lines":["a"],"reason":"cannot attend",\#(customer)}"#)
        let requestID = try #require(request["id"] as? String)
        let open = try c.ok(#"{"id":32,"op":"refund.requests"}"#)
        #expect((open["requests"] as? [Any])?.count == 1)
        let approved = try c.ok(#"{"id":33,"op":"refund.approve","request_id":"\#(requestID)","method":"offline","note":"ok"}"#)
        #expect(approved["amount"] as? Int == 2000)
        let again = try c.ok(#"{"id":34,"op":"refund.request","order_id":"ord_3","lines":["b"],"reason":"please",\#(customer)}"#)
        let declined = try c.ok(#"{"id":35,"op":"refund.decline","request_id":"\#(again["id"] as? String ?? "")","note":"no"}"#)
        #expect(declined["status"] as? String == "declined")
        // Permissions come from the actor: a buyer cannot apply a fee.
        try c.fails(
            #"{"id":36,"op":"refund.create","order_id":"ord_3","method":"offline","reason":"x","fee":{"each":1},"actor":{"id":"u","permissions":["refund"]}}"#,
            "permission_denied")

        // Disputes, cancellation, moderation.
        _ = try c.ok(#"{"id":40,"op":"order.put","order":\#(simpleOrderJSON("ord_4"))}"#)
        let disputed = try c.ok(#"{"id":41,"op":"dispute.open","order_id":"ord_4","reason":"chargeback"}"#)
        #expect(disputed["disputed"] as? Bool == true)
        let blocked = try c.fails(#"{"id":42,"op":"refund.create","order_id":"ord_4","method":"offline","reason":"x"}"#, "disputed")
        #expect(((blocked["error"] as? [String: Any])?["blocked"] as? [Any])?.isEmpty == false)
        _ = try c.ok(#"{"id":43,"op":"dispute.close","order_id":"ord_4","outcome":"won"}"#)
        let cancelled = try c.ok(#"{"id":44,"op":"order.cancel","order_id":"ord_4","refund":false,"reason":"fraud"}"#)
        #expect(cancelled["method"] as? String == "none")
        _ = try c.ok(#"{"id":45,"op":"order.put","order":\#(simpleOrderJSON("ord_5"))}"#)
        let moderated = try c.ok(#"{"id":46,"op":"order.moderate","order_id":"ord_5","outcome":"invalidate_no_refund"}"#)
        #expect(moderated["reason"] as? String == "moderation")

        // Bulk: a dry run, then the job, then its status.
        for i in 0..<5 { _ = try c.ok(#"{"id":"b\#(i)","op":"order.put","order":\#(simpleOrderJSON("bulk_" + String(i), event: "evt_bulk"))}"#) }
        let dry = try c.ok(#"{"id":50,"op":"bulk.cancel_event","events":["evt_bulk"],"method":"offline","reason":"event_cancelled","dry_run":true}"#)
        #expect(dry["total"] as? Int == 5)
        #expect(dry["dry_run"] as? Bool == true)
        let job = try c.ok(#"{"id":51,"op":"bulk.cancel_event","events":["evt_bulk"],"method":"offline","fee":{"order":100},"reason":"event_cancelled","wait":true}"#)
        let jobID = try #require(job["job_id"] as? String)
        #expect(job["succeeded"] as? Int == 5)
        let status = try c.ok(#"{"id":52,"op":"bulk.status","job_id":"\#(jobID)"}"#)
        #expect(status["state"] as? String == "completed")
        #expect(status["refunded"] as? Int == 5 * 3900)
        let started = try c.ok(#"{"id":53,"op":"bulk.cancel_event","events":["evt_none"],"method":"offline","reason":"event_cancelled"}"#)
        #expect(started["job_id"] as? String != nil)

        // Events: listed, streamed to the subscriber, acknowledged.
        let listed = try c.ok(#"{"id":60,"op":"events.list","after":0,"limit":500}"#)
        let eventList = try #require(listed["events"] as? [[String: Any]])
        #expect(eventList.contains { $0["kind"] as? String == "refund.completed" })
        #expect(eventList.contains { $0["kind"] as? String == "bulk.summary" })
        var streamed: [[String: Any]] = []
        while streamed.count < eventList.count {
            let line = try events.readObject()
            let event = try #require(line["event"] as? [String: Any], "\(line)")
            streamed.append(event)
        }
        let streamedSequences = streamed.compactMap { $0["sequence"] as? Int }
        #expect(streamedSequences == eventList.compactMap { $0["sequence"] as? Int })
        #expect(streamedSequences == streamedSequences.sorted())
        _ = try c.ok(#"{"id":61,"op":"events.ack","up_to":\#(streamedSequences.last ?? 0)}"#)
        let afterAck = try c.ok(#"{"id":62,"op":"events.list"}"#)
        // Acknowledged events are gone; the retry scheduler may have produced new ones since (never older ones).
        let remaining = (afterAck["events"] as? [[String: Any]] ?? []).compactMap { $0["sequence"] as? Int }
        #expect(remaining.allSatisfy { $0 > (streamedSequences.last ?? 0) }, "\(remaining)")

        let stats = try c.ok(#"{"id":70,"op":"stats"}"#)
        #expect(stats["orders"] as? Int == 10)
        #expect((stats["server"] as? [String: Any])?["connections"] as? Int == 2)
        #expect(stats["state"] as? String == "running")
        #expect((stats["snapshots"] as? [String: Any])?["failures"] as? Int == 0)
        let health = try c.ok(#"{"id":"h","op":"health"}"#)
        #expect(health["ready"] as? Bool == true && health["state"] as? String == "running")
        _ = try c.ok(#"{"id":71,"op":"snapshot"}"#)
        try c.fails(#"{"id":72,"op":"refund.get","refund_id":"rf_9_nope"}"#, "refund_not_found")
        try c.fails(#"{"id":73,"op":"bulk.status","job_id":"job_99"}"#, "job_not_found")
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("bad input gets error responses; the connection and the daemon keep serving")
    func hostileInput() throws {
        let daemon = try Daemon(["--partitions", "1", "--max-line-bytes", "65536"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":0,"op":"order.put","order":\#(simpleOrderJSON("o0"))}"#)
        try c.fails("garbage", "invalid_json")
        try c.fails("{\"id\":1,\"op\":\"ping\"", "invalid_json")
        try c.fails("[1,2]", "invalid_json")
        try c.fails("42", "invalid_json")
        // Invalid UTF-8 inside a string.
        c.send(bytes: Array(#"{"id":2,"op":"order.get","order_id":""#.utf8) + [0xFF, 0xFE] + Array("\"}\n".utf8))
        let utf8 = try c.readObject()
        #expect((utf8["error"] as? [String: Any])?["code"] as? String == "invalid_json")
        // Deep nesting, inside and outside a field.
        try c.fails(String(repeating: "[", count: 60_000), "invalid_json")
        let nested = #"{"id":3,"op":"order.put","order":"# + String(repeating: #"{"a":"#, count: 5000) + "1"
            + String(repeating: "}", count: 5001)
        let deep = try c.call(nested)
        #expect(deep["ok"] as? Bool == false)
        // Over-long lines: one with its newline, one in pieces; both discarded up to the newline.
        try c.fails(#"{"id":4,"op":"ping","pad":""# + String(repeating: "x", count: 200_000) + #""}"#, "line_too_long")
        c.send(bytes: Array(repeating: UInt8(ascii: "y"), count: 100_000))
        c.send(bytes: Array(repeating: UInt8(ascii: "y"), count: 100_000) + [UInt8(ascii: "\n")])
        let tooLong = try c.readObject()
        #expect((tooLong["error"] as? [String: Any])?["code"] as? String == "line_too_long")
        // Fields: unknown op, wrong types, missing fields, bad enum values, bad ids.
        try c.fails(#"{"id":5,"op":"order.explode"}"#, "unknown_op")
        try c.fails(#"{"id":6}"#, "missing_field")
        try c.fails(#"{"id":7,"op":7}"#, "invalid_field")
        try c.fails(#"{"id":8,"op":"order.get"}"#, "missing_field")
        try c.fails(#"{"id":9,"op":"order.get","order_id":["x"]}"#, "invalid_field")
        try c.fails(#"{"id":10,"op":"refund.create","order_id":"o","method":"teleport","reason":"x"}"#, "invalid_field")
        try c.fails(#"{"id":11,"op":"order.put","order":{"id":"o"}}"#, "missing_field")
        try c.fails(#"{"id":12,"op":"refund.list","limit":-1}"#, "invalid_field")
        try c.fails(#"{"id":{"a":1},"op":"ping"}"#, "invalid_field")
        try c.fails(#"{"id":13,"op":"order.put","order":{"id":"o","event":"e","currency":"XXX","lines":[]}}"#, "invalid_currency")
        try c.fails(#"{"id":14,"op":"refund.create","order_id":"o","method":"original","reason":"x","fee":{"order":99999999999999999999}}"#, "invalid_field")
        try c.fails(#"{"id":15,"op":"refund.create","order_id":"o","method":"original","reason":"x","actor":{"id":"a","permissions":["root"]}}"#, "invalid_field")
        let echoed = try c.call(#"{"id":"abc","op":"nope"}"#)
        #expect(echoed["id"] as? String == "abc")
        _ = try c.ok(#"{"id":16,"op":"ping"}"#)

        // Half a line, then disconnect.
        do {
            let half = try LineClient(port: daemon.port)
            half.send(bytes: Array(#"{"id":1,"op":"order.put","order":{"id":"#.utf8))
        }
        // A long line without a newline, then disconnect.
        do {
            let long = try LineClient(port: daemon.port)
            long.send(bytes: Array(repeating: UInt8(ascii: "z"), count: 2 << 20))
        }
        // Random bytes.
        do {
            let noise = try LineClient(port: daemon.port)
            var generator = SystemRandomNumberGenerator()
            noise.send(bytes: (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &generator) } + [10])
            noise.shutdownWrite()
            while noise.readLine() != nil {}
        }
        let fresh = try LineClient(port: daemon.port)
        _ = try fresh.ok(#"{"id":1,"op":"ping"}"#)
        _ = try c.ok(#"{"id":17,"op":"ping"}"#)
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("a 2 MiB line with the default 1 MiB limit is refused and skipped")
    func twoMiBLine() throws {
        let daemon = try Daemon(["--partitions", "1"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":0,"op":"order.put","order":\#(simpleOrderJSON("o0"))}"#)
        let big = #"{"id":1,"op":"order.get","order_id":""# + String(repeating: "x", count: 2 << 20) + #""}"#
        try c.fails(big, "line_too_long")
        _ = try c.ok(#"{"id":2,"op":"ping"}"#)
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("1,000 pipelined requests in flight on one connection all get answers")
    func pipelining() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        var batch = ""
        for i in 0..<500 {
            batch += #"{"id":\#(2 * i),"op":"order.put","order":\#(simpleOrderJSON("p_" + String(i)))}"# + "\n"
            // The same order right after its put: requests about one order keep their order.
            batch += #"{"id":\#(2 * i + 1),"op":"refund.create","order_id":"p_\#(i)","method":"original","reason":"r"}"# + "\n"
        }
        let bytes = Array(batch.utf8)
        let writer = Thread { c.send(bytes: bytes) }
        writer.start()
        var seen = Set<Int>()
        for _ in 0..<1000 {
            let response = try c.readObject()
            let id = try #require(response["id"] as? Int)
            #expect(response["ok"] as? Bool == true, "\(response)")
            seen.insert(id)
        }
        #expect(seen == Set(0..<1000))
        let stats = try c.ok(#"{"id":"s","op":"stats"}"#)
        #expect(stats["refunds"] as? Int == 500)
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("auth: a token is required first, compared, and wrong tokens close the connection")
    func auth() throws {
        let daemon = try Daemon([
            "--partitions", "1", "--auth-token", "s3cret-s3cret-s3cret", "--max-auth-failures", "1",
            "--auth-failure-delay-ms", "10",
        ])
        let c = try LineClient(port: daemon.port)
        try c.fails(#"{"id":1,"op":"ping"}"#, "unauthorized")
        _ = try c.ok(#"{"id":2,"op":"auth","token":"s3cret-s3cret-s3cret"}"#)
        _ = try c.ok(#"{"id":3,"op":"order.put","order":\#(simpleOrderJSON("o0"))}"#)
        let wrong = try LineClient(port: daemon.port)
        try wrong.fails(#"{"id":1,"op":"auth","token":"s3cret-s3cret-s3cre"}"#, "unauthorized")
        #expect(wrong.readLine() == nil)  // closed (--max-auth-failures 1)
        _ = try c.ok(#"{"id":4,"op":"ping"}"#)
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("a daemon that stored nothing stops with exit 0")
    func emptyStop() throws {
        let daemon = try Daemon(["--partitions", "2"])
        // Known engine issue: Engine.close() (its snapshot) fails for a partition whose log never had a record
        // ("sequence 1 has not been appended"), so refundd exits 74. Remove the wrapper once the engine is fixed.
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("connections beyond --max-connections are refused with an error line")
    func connectionLimit() throws {
        let daemon = try Daemon(["--partitions", "1", "--max-connections", "1"])
        let first = try LineClient(port: daemon.port)
        _ = try first.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("o0"))}"#)
        let second = try LineClient(port: daemon.port)
        let refused = try second.readObject()
        #expect((refused["error"] as? [String: Any])?["code"] as? String == "too_many_connections")
        #expect(second.readLine() == nil)
        _ = try first.ok(#"{"id":2,"op":"ping"}"#)
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("a Unix domain socket serves the same protocol")
    func unixSocket() throws {
        let directory = Daemon.temporaryDirectory()
        let path = directory + "/refundd.sock"
        let daemon = try Daemon(dataDir: directory + "/data", ["--partitions", "1", "--unix-socket", path])
        let c = try LineClient(unixSocket: path)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("o0"))}"#)
        let got = try c.ok(#"{"id":2,"op":"order.get","order_id":"o0"}"#)
        #expect(got["status"] as? String == "completed")
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("a non-loopback host without a token is refused at start")
    func nonLoopbackNeedsToken() throws {
        #expect(throws: TestFailure.self) { try Daemon(["--host", "0.0.0.0"]) }
    }

    @Test("SIGTERM under load: exit 0, and a restart has every acknowledged change")
    func sigtermKeepsAcknowledged() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let dataDir = daemon.dataDir
        let c = try LineClient(port: daemon.port)
        // Some orders first, so that every partition has data.
        for i in 0..<20 { _ = try c.ok(#"{"id":\#(i),"op":"order.put","order":\#(simpleOrderJSON("pre_" + String(i)))}"#) }
        var batch = ""
        for i in 0..<3000 {
            batch += #"{"id":\#(i),"op":"order.put","order":\#(simpleOrderJSON("load_" + String(i)))}"# + "\n"
        }
        let bytes = Array(batch.utf8)
        let writer = Thread { c.send(bytes: bytes) }
        writer.start()
        var acknowledged: [Int] = []
        while let line = c.readLine() {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if object["ok"] as? Bool == true, let id = object["id"] as? Int { acknowledged.append(id) }
            if acknowledged.count == 300 { kill(daemon.process.processIdentifier, SIGTERM) }
        }
        #expect(daemon.stop() == 0, "\(daemon.log)")
        #expect(acknowledged.count >= 300)

        let restarted = try Daemon(dataDir: dataDir, ["--partitions", "2"])
        let r = try LineClient(port: restarted.port)
        for id in acknowledged {
            let order = try r.ok(#"{"id":\#(id),"op":"order.get","order_id":"load_\#(id)"}"#)
            #expect((order["order"] as? [String: Any])?["id"] as? String == "load_\(id)")
        }
        let stats = try r.ok(#"{"id":"s","op":"stats"}"#)
        #expect((stats["orders"] as? Int ?? 0) >= 20 + acknowledged.count)
        #expect(restarted.stop() == 0, "\(restarted.log)")
    }
}
