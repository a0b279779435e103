import DaemonTestSupport
import Foundation
import RefundCore
import Testing

@testable import RefundServer

/// Issue 7 over the socket: what `refundd` answers must be what happened, and only to who may ask.
@Suite("refundd: honest totals and permissions (issue 7)")
struct Issue7ProtocolTests {
    /// Item 3: `bulk.status` names the money by what became of it, per currency.
    @Test("bulk.status: refunded is succeeded money only; pending and failed amounts, per currency")
    func bulkStatusAmounts() throws {
        let daemon = try Daemon(["--gateway", "external", "--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        for i in 1...6 {
            _ = try c.ok(
                #"{"id":"p\#(i)","op":"order.put","order":{"id":"ord_s\#(i)","event":"evt_six","customer":"cus_\#(i)","currency":"GBP","lines":[{"id":"l1","ticket_type":"tt_a","price":2900}],"tenders":[{"id":"t1","method":"card","amount":2900}]}}"#
            )
        }
        let started = try c.ok(
            #"{"id":1,"op":"bulk.cancel_event","events":["evt_six"],"method":"original","reason":"event_cancelled","wait":true}"#)
        let jobID = try #require(started["job_id"] as? String)
        #expect(started["state"] as? String == "running")
        #expect(started["refunded"] as? Int == 0 && started["pending_amount"] as? Int == 17_400)
        #expect(started["failed_amount"] as? Int == 0 && started["currency"] as? String == "GBP")

        for i in 1...6 {
            let settle =
                i == 1
                ? #"{"id":"s1","op":"refund.settle","refund_id":"rf_1_ord_s1","tender":"t1","succeeded":false,"failure_code":"expired_card"}"#
                : #"{"id":"s\#(i)","op":"refund.settle","refund_id":"rf_1_ord_s\#(i)","tender":"t1","succeeded":true}"#
            _ = try c.ok(settle)
        }
        let status = try c.ok(#"{"id":2,"op":"bulk.status","job_id":"\#(jobID)"}"#)
        #expect(status["state"] as? String == "completed")
        #expect(status["succeeded"] as? Int == 5 && status["failed"] as? Int == 1)
        #expect(status["refunded"] as? Int == 14_500 && status["failed_amount"] as? Int == 2_900)
        #expect(status["pending_amount"] as? Int == 0 && status["fee_retained"] as? Int == 0)
        let gbp = (status["by_currency"] as? [String: Any])?["GBP"] as? [String: Any]
        #expect(gbp?["refunded"] as? Int == 14_500 && gbp?["failed_amount"] as? Int == 2_900)
        #expect(gbp?["pending_amount"] as? Int == 0 && gbp?["fee_retained"] as? Int == 0)
        daemon.stop()
    }

    /// Item 9: every event of a refund carries the notify and the email text it was made with, on the wire.
    @Test("events: refund.accepted, refund.completed and refund.failed carry notify, notify_email and email_text")
    func eventsCarryTheRefundsNotice() throws {
        let daemon = try Daemon(["--gateway", "external", "--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        for id in ["ord_n1", "ord_n2"] {
            _ = try c.ok(
                #"{"id":"p_\#(id)","op":"order.put","order":{"id":"\#(id)","event":"evt_n","email":"n@example.com","currency":"GBP","lines":[{"id":"l1","ticket_type":"tt_a","price":2900}],"tenders":[{"id":"t1","method":"card","amount":2900}]}}"#
            )
        }
        let told = try c.ok(
            #"{"id":1,"op":"refund.create","order_id":"ord_n1","method":"original","reason":"customer_request","email_text":"Sorry \u00e9"}"#)
        #expect(told["email_text"] as? String == "Sorry é" && told["notify"] == nil)
        let quiet = try c.ok(
            #"{"id":2,"op":"refund.create","order_id":"ord_n2","method":"original","reason":"customer_request","notify":false}"#)
        #expect(quiet["notify"] as? Bool == false && quiet["email_text"] == nil)
        _ = try c.ok(#"{"id":3,"op":"refund.settle","refund_id":"rf_1_ord_n1","tender":"t1","succeeded":true}"#)
        _ = try c.ok(
            #"{"id":4,"op":"refund.settle","refund_id":"rf_1_ord_n2","tender":"t1","succeeded":false,"failure_code":"expired_card"}"#)
        let listed = try c.ok(#"{"id":5,"op":"events.list","after":0}"#)
        let events = try #require(listed["events"] as? [[String: Any]])
        let first = events.filter { $0["refund_id"] as? String == "rf_1_ord_n1" }
        #expect(first.compactMap { $0["kind"] as? String } == ["refund.accepted", "refund.completed"])
        for event in first {
            #expect(event["notify"] as? Bool == true && event["notify_email"] as? String == "n@example.com")
            #expect(event["email_text"] as? String == "Sorry é")
        }
        let second = events.filter { $0["refund_id"] as? String == "rf_1_ord_n2" }
        #expect(second.compactMap { $0["kind"] as? String } == ["refund.accepted", "refund.failed"])
        for event in second {
            #expect(event["notify"] as? Bool == false && event["notify_email"] == nil && event["email_text"] == nil)
        }
        #expect(second.last?["text"] as? String == "expired_card")
        let long = String(repeating: "x", count: 4097)
        _ = try c.ok(#"{"id":6,"op":"order.put","order":\#(simpleOrderJSON("ord_n3"))}"#)
        try c.fails(
            #"{"id":7,"op":"refund.create","order_id":"ord_n3","method":"original","reason":"customer_request","email_text":"\#(long)"}"#,
            "invalid_field")
        daemon.stop()
    }

    /// Item 7: after `contacted_buyer`, more actions, a retry and a closing action are all accepted.
    @Test("refund.recover is a log: contacted_buyer, again, retry, then written_off")
    func recoveryLog() throws {
        let daemon = try Daemon(["--gateway", "external", "--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("ord_rl"))}"#)
        let refund = try c.ok(#"{"id":2,"op":"refund.create","order_id":"ord_rl","method":"original","reason":"customer_request"}"#)
        let id = try #require(refund["id"] as? String)
        let failure = #"{"id":3,"op":"refund.settle","refund_id":"\#(id)","tender":"t1","succeeded":false,"failure_code":"expired_card"}"#
        _ = try c.ok(failure)
        let first = try c.ok(#"{"id":4,"op":"refund.recover","refund_id":"\#(id)","action":"contacted_buyer","note":"emailed"}"#)
        #expect(first["recovery"] == nil && (first["recoveries"] as? [Any])?.count == 1)
        _ = try c.ok(#"{"id":5,"op":"refund.recover","refund_id":"\#(id)","action":"contacted_buyer","note":"phoned"}"#)
        let retried = try c.ok(#"{"id":6,"op":"refund.retry","refund_id":"\#(id)"}"#)
        #expect(retried["status"] as? String == "pending")
        _ = try c.ok(failure.replacingOccurrences(of: #""id":3"#, with: #""id":7"#))
        let attention = try c.ok(#"{"id":8,"op":"refund.attention"}"#)
        #expect((attention["refunds"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        let closed = try c.ok(#"{"id":9,"op":"refund.recover","refund_id":"\#(id)","action":"written_off","note":"gave up"}"#)
        #expect((closed["recovery"] as? [String: Any])?["action"] as? String == "written_off")
        #expect((closed["recoveries"] as? [[String: Any]])?.compactMap { $0["action"] as? String } == ["contacted_buyer", "contacted_buyer", "written_off"])
        #expect(closed["recoveries_before_retry"] as? Int == 2)
        try c.fails(#"{"id":10,"op":"refund.recover","refund_id":"\#(id)","action":"other","note":"more"}"#, "invalid_state")
        try c.fails(#"{"id":11,"op":"refund.retry","refund_id":"\#(id)"}"#, "invalid_state")
        daemon.stop()
    }

    /// `line` with its `actor` replaced by `actor` (a JSON object).
    static func with(actor: String, _ line: String) throws -> String {
        guard var object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("not an object: \(line)")
        }
        object["actor"] = try JSONSerialization.jsonObject(with: Data(actor.utf8))
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    static let connectionOps: Set<String> = ["auth", "ping", "hello", "health"]

    /// Item 12: every op but auth, ping, hello and health needs a permission; a buyer-only actor cannot drop the outbox.
    @Test("every op needs a permission; a buyer-only actor cannot acknowledge the outbox")
    func everyOpHasAPermission() throws {
        let daemon = try Daemon(["--gateway", "external", "--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":"put","op":"order.put","order":\#(orderJSON("ord_1"))}"#)
        _ = try c.ok(#"{"id":"put2","op":"order.put","order":\#(simpleOrderJSON("ord_ev"))}"#)
        _ = try c.ok(#"{"id":"rf","op":"refund.create","order_id":"ord_ev","lines":["a"],"method":"offline","reason":"x"}"#)
        let before = try c.ok(#"{"id":"list","op":"events.list","after":0}"#)
        let eventCount = (before["events"] as? [Any])?.count ?? 0
        #expect(eventCount > 0)

        // No permissions at all: refused, op by op, before anything is looked up or changed.
        var checked = Set<String>()
        for line in requestCorpus + [#"{"id":"h","op":"health"}"#] {
            guard let op = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["op"] as? String,
                !checked.contains(op)
            else { continue }
            checked.insert(op)
            let request = try Self.with(actor: #"{"id":"nobody","permissions":[]}"#, line)
            let response = try c.call(request)
            let code = (response["error"] as? [String: Any])?["code"] as? String
            if Self.connectionOps.contains(op) {
                #expect(code != "permission_denied", "\(op): \(response)")
            } else {
                #expect(code == "permission_denied", "\(op): \(response)")
            }
        }
        #expect(checked == Set(ServerOperation.names))

        // A buyer (self_service only) can file their own request, and nothing of the operator's.
        let buyer = #"{"id":"cus_9","permissions":["self_service"]}"#
        for line in [
            #"{"id":1,"op":"events.ack","up_to":1000000}"#, #"{"id":2,"op":"events.list","after":0}"#,
            #"{"id":3,"op":"events.subscribe","after":0}"#, #"{"id":4,"op":"snapshot"}"#,
            #"{"id":5,"op":"order.put","order":\#(orderJSON("ord_2"))}"#, #"{"id":6,"op":"order.get","order_id":"ord_1"}"#,
            #"{"id":7,"op":"stats"}"#, #"{"id":8,"op":"refund.resend","refund_id":"rf_1_ord_1"}"#,
        ] {
            try c.fails(try Self.with(actor: buyer, line), "permission_denied")
        }
        _ = try c.ok(try Self.with(actor: buyer, #"{"id":9,"op":"refund.request","order_id":"ord_1","reason":"cannot attend"}"#))
        let after = try c.ok(#"{"id":"list2","op":"events.list","after":0}"#)
        #expect((after["events"] as? [Any])?.count == eventCount)  // the outbox is intact
        try c.fails(#"{"id":10,"op":"order.get","order_id":"ord_2"}"#, "order_not_found")  // the put changed nothing

        // One permission is enough for its ops.
        _ = try c.ok(try Self.with(actor: #"{"id":"checkout","permissions":["place_order"]}"#, #"{"id":11,"op":"order.put","order":\#(orderJSON("ord_2"))}"#))
        _ = try c.ok(try Self.with(actor: #"{"id":"ops","permissions":["admin"]}"#, #"{"id":12,"op":"snapshot"}"#))
        _ = try c.ok(try Self.with(actor: #"{"id":"viewer","permissions":["read"]}"#, #"{"id":13,"op":"order.get","order_id":"ord_2"}"#))
        let acked = try c.ok(try Self.with(actor: #"{"id":"mailer","permissions":["events"]}"#, #"{"id":14,"op":"events.ack","up_to":1}"#))
        #expect(acked["up_to"] as? Int == 1)
        try c.fails(try Self.with(actor: #"{"id":"viewer","permissions":["read"]}"#, #"{"id":15,"op":"events.ack","up_to":2}"#), "permission_denied")
        daemon.stop()
    }

    /// docs/protocol.md's "Permissions" table is the code's: one row per op, starting with what the op needs.
    @Test("docs/protocol.md: the permissions table says what Operation.access says, for every op")
    func permissionsTableMatchesTheCode() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        guard let start = text.range(of: "## Permissions\n") else { throw TestFailure("no Permissions section") }
        var documented: [String: String] = [:]
        for line in text[start.upperBound...].split(separator: "\n") {
            if line.hasPrefix("## ") { break }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, cells[0].hasPrefix("`"), cells[0].hasSuffix("`") else { continue }
            let op = String(cells[0].dropFirst().dropLast())
            #expect(documented[op] == nil, "\(op) documented twice")
            documented[op] = cells[1].components(separatedBy: " — ")[0]
        }
        #expect(Set(documented.keys) == Set(ServerOperation.names))
        for line in requestCorpus + [#"{"id":"h","op":"health"}"#] {
            guard case .success(let operation) = decodedOperation(line) else { continue }
            #expect(documented[operation.name] == Self.describe(operation.access), "\(operation.name)")
        }
    }

    static func describe(_ access: OperationAccess) -> String {
        switch access {
        case .connection: "none"
        case .permission(let p): "`\(p.rawValue)`"
        case .anyOf(let ps): ps.map { "`\($0.rawValue)`" }.joined(separator: " or ")
        case .refundOptions(_, let also?): "`\(also.rawValue)` and the options"
        case .refundOptions(_, nil): "the options"
        }
    }
}
