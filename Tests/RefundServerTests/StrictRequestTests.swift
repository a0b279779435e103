import DaemonTestSupport
import Foundation
import RefundCore
import RefundEngine
import Testing

@testable import RefundServer

// Strict requests (docs/protocol.md, "Strict requests"; issue 7 item 1): a field the op does not know, a repeated
// key, a number with a fraction where an integer belongs, a value that is no case of an enumeration: each is an
// error naming the field, and the request changes nothing. First at the decoder (fast), then against the daemon.

/// How a request line decodes: the operation, or the error the server answers.
func decodedOperation(_ line: String) -> Result<ServerOperation, RefundError> {
    do {
        return try JSONValueDecoder().decode(Request.self, from: Array(line.utf8)).operation
    } catch {
        return .failure(RefundError.from(decoding: error))
    }
}

/// The error a request line is answered with (nil when it decodes).
func decodingError(_ line: String) -> RefundError? {
    if case .failure(let error) = decodedOperation(line) { return error }
    return nil
}

/// `line` (a JSON object) with `member` added as its last member.
func adding(_ member: String, to line: String) -> String {
    String(line.trimmingCharacters(in: .whitespaces).dropLast()) + "," + member + "}"
}

/// A type that reads members `k0`…`k(n-1)`: for objects past the decoder's 64-member bit mask.
struct ReadsKeys: Decodable {
    static let count = 70
    var sum = 0
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONMemberKey.self)
        for index in 0..<Self.count { sum += try c.decode(Int.self, forKey: JSONMemberKey("k\(index)")) }
    }
}

@Suite("strict requests: unknown fields, duplicate keys, integers, enumerations (decoder)")
struct StrictDecodingTests {
    let create = #"{"id":1,"op":"refund.create","order_id":"o1","method":"original","reason":"x"}"#
    let put = #"{"id":2,"op":"order.put","order":\#(orderJSON)}"#

    @Test("a: every op refuses a field it does not know, naming the path; id, op and actor are allowed on every op")
    func unknownFields() throws {
        // The reported cases.
        for typo in [#""include_booking_fees":true"#, #""restok":false"#, #""fees":{"order":1}"#] {
            let error = try #require(decodingError(adding(typo, to: create)), "\(typo)")
            let name = typo.split(separator: "\"")[0]
            #expect(error.code == .invalidField)
            #expect(error.message == "refund.create.\(name) is not a field of refund.create")
        }
        // Every op of the request corpus, with every parameter: decodes, and refuses one more member.
        for line in requestCorpus {
            guard case .success = decodedOperation(line) else {
                Issue.record("\(line) does not decode")
                continue
            }
            let op = try #require(try JSONParser().parse(line)["op"].flatMap { if case .string(let s) = $0 { s } else { nil } })
            let error = decodingError(adding(#""zzz":null"#, to: line))
            #expect(error?.code == .invalidField, "\(line)")
            #expect(error?.message == "\(op).zzz is not a field of \(op)", "\(line)")
            // The envelope: id, op and actor on every op.
            if !line.contains(#""actor""#) {
                #expect(decodingError(adding(#""actor":{"id":"ops_1"}"#, to: line)) == nil, "\(line)")
            }
        }
        #expect(decodingError(#"{"op":"ping","token":"t"}"#)?.message == "ping.token is not a field of ping")
        // Nested objects: the order, its lines and tenders, the fee, the actor.
        let nested: [(String, String)] = [
            (
                put.replacingOccurrences(of: #""price":5000"#, with: #""prise":5000,"price":5000"#),
                "order.put.order.lines[0].prise is not a field of an order line"
            ),
            (
                put.replacingOccurrences(of: #""amount":1884"#, with: #""amount":1884,"fee":0"#),
                "order.put.order.tenders[1].fee is not a field of a tender"
            ),
            (
                put.replacingOccurrences(of: #""booking_fee":150"#, with: #""booking_fee":150,"notes":"x""#),
                "order.put.order.notes is not a field of an order"
            ),
            (
                adding(#""fee":{"order":500,"cap":100}"#, to: create),
                "refund.create.fee.cap is not a field of a fee"
            ),
            (
                adding(#""actor":{"id":"ops_1","role":"admin"}"#, to: create),
                "refund.create.actor.role is not a field of an actor"
            ),
            (
                #"{"op":"bulk.cancel_event","events":["e"],"method":"original","reason":"x","fee":{"each":1,"x":null}}"#,
                "bulk.cancel_event.fee.x is not a field of a fee"
            ),
        ]
        for (line, message) in nested {
            let error = decodingError(line)
            #expect(error?.code == .invalidField, "\(line)")
            #expect(error?.message == message)
        }
        // A field the op does not read is refused even when other fields fail later: the first error wins, and
        // an unknown field never hides behind a default.
        #expect(decodingError(#"{"op":"refund.create","order_id":"o","reason":"x"}"#)?.code == .missingField)
        // The id is echoed with the error.
        let request = try JSONValueDecoder().decode(Request.self, from: #"{"id":"abc","op":"ping","x":1}"#)
        #expect(request.id == .string("abc"))
    }

    @Test("a: an embedder decoding the public request types with JSONValueDecoder gets the same strictness")
    func embeddersDecodeStrictly() throws {
        // Only the public API: what a checkout service that embeds the engine and reads JSON itself would call.
        let decoder = JSONValueDecoder()
        let options = try decoder.decode(RefundOptions.self, from: #"{"method":"original","reason":"x","restock":false}"#)
        #expect(options.restock == false)
        for misspelt in [
            #"{"method":"original","reason":"x","restok":false}"#,
            #"{"method":"original","reason":"x","include_booking_fees":true}"#,
            #"{"method":"original","reason":"x","fee":{"order":100,"fees":1}}"#,
        ] {
            do {
                _ = try decoder.decode(RefundOptions.self, from: misspelt)
                Issue.record("accepted \(misspelt)")
            } catch let DecodingError.dataCorrupted(context) {
                #expect(context.underlyingError is JSONUnknownFieldError, "\(misspelt)")
            }
        }
        do {
            _ = try decoder.decode(RefundOptions.self, from: #"{"method":"original","reason":"x","restok":false}"#)
        } catch {
            #expect(RefundError.from(decoding: error).code == .invalidField)
            #expect(RefundError.from(decoding: error).message == "restok is not a field of refund options")
        }
        let line = #"{"id":"l1","ticket_type":"tt","price":5000,"dicsount":500}"#
        #expect(throws: DecodingError.self) { try decoder.decode(OrderLine.self, from: line) }
        let tender = #"{"id":"t1","method":"card","amount":5000,"gateway_reference":"pi"}"#
        #expect(throws: DecodingError.self) { try decoder.decode(Tender.self, from: tender) }
        // A fraction where an integer is due, too.
        #expect(throws: DecodingError.self) {
            try decoder.decode(RefundOptions.self, from: #"{"method":"original","reason":"x","fee":{"each":100.0}}"#)
        }
    }

    @Test("a: the decoder refuses unread members of any type, nested containers and objects past 64 members")
    func unknownFieldsInTheDecoder() throws {
        let decoder = JSONValueDecoder()
        #expect(try decoder.decode(Optionals.self, from: #"{"a":"x","b":2}"#) == Optionals(a: "x", b: 2))
        #expect(throws: DecodingError.self) { try decoder.decode(Optionals.self, from: #"{"b":2,"c":null}"#) }
        #expect(throws: DecodingError.self) { try decoder.decode(Super.self, from: #"{"super":5,"k":"v"}"#) }
        // Members read through nested containers count; one that is not is reported at its path.
        #expect(try decoder.decode(Nested.self, from: #"{"x":{"y":[1,[2],{"z":3}]},"w":4}"#) == Nested())
        do {
            _ = try decoder.decode(Nested.self, from: #"{"x":{"y":[1,[2],{"z":3,"q":0}]},"w":4}"#)
            Issue.record("accepted")
        } catch let DecodingError.dataCorrupted(context) {
            #expect(RefundError.path(context.codingPath) == "x.y[2].q")
            #expect((context.underlyingError as? JSONUnknownFieldError)?.key == "q")
        }
        // A value taken whole (JSONValue) reads everything in it.
        #expect(try decoder.decode([String: JSONValue].self, from: #"{"a":{"b":[{"c":1}]}}"#).count == 1)
        // Past 64 members.
        let keys = (0..<ReadsKeys.count).map { #""k\#($0)":1"# }
        #expect(try decoder.decode(ReadsKeys.self, from: "{" + keys.joined(separator: ",") + "}").sum == 70)
        for extra in [0, 40, 66, 200] {
            var members = keys
            members.insert(#""extra":1"#, at: min(extra, members.count))
            do {
                _ = try decoder.decode(ReadsKeys.self, from: "{" + members.joined(separator: ",") + "}")
                Issue.record("accepted with extra at \(extra)")
            } catch let DecodingError.dataCorrupted(context) {
                #expect((context.underlyingError as? JSONUnknownFieldError)?.key == "extra")
            }
        }
        // Off: Foundation's behaviour (unknown members ignored).
        let lenient = JSONValueDecoder(rejectsUnknownFields: false)
        #expect(try lenient.decode(Optionals.self, from: #"{"b":2,"c":null,"d":[1]}"#) == Optionals(a: nil, b: 2))
        // An unknown key is shown cut to 64 characters.
        let long = String(repeating: "k", count: 500)
        let message = decodingError(#"{"op":"ping","\#(long)":1}"#)?.message ?? ""
        #expect(message.count < 120 && message.hasSuffix("… is not a field of ping"), "\(message)")
    }

    @Test("b: a repeated key is invalid_json naming the key and its path; first-wins is gone")
    func duplicateKeys() throws {
        let parser = JSONParser()
        #expect(throws: JSONParseError(.duplicateKey(key: "a", path: "a"), at: 7)) { try parser.parse(#"{"a":1,"a":2}"#) }
        #expect(
            throws: JSONParseError(.duplicateKey(key: "price", path: "order.lines[1].price"), at: 52)
        ) {
            try parser.parse(#"{"order":{"lines":[{"price":1},{"id":"l2","price":1,"price":2}]}}"#)
        }
        #expect(
            throws: JSONParseError(.duplicateKey(key: "b", path: "[0][1].b"), at: 12)
        ) { try parser.parse(#"[[{},{"b":1,"b":1}]]"#) }
        // Large objects (a set instead of a scan) and the same key in different objects (fine).
        let many = (0..<40).map { #""k\#($0)":\#($0)"# }
        #expect(throws: JSONParseError.self) { try parser.parse("{" + (many + [#""k3":0"#]).joined(separator: ",") + "}") }
        #expect(throws: JSONParseError.self) { try parser.parse("{" + (many + [#""k39":0"#]).joined(separator: ",") + "}") }
        #expect(try parser.parse("{" + many.joined(separator: ",") + "}")["k39"] == .int(39))
        #expect(try parser.parse(#"[{"a":1},{"a":2},{"x":{"a":3},"a":4}]"#)[2]?["a"] == .int(4))
        // Keys that differ only by escaping are the same key.
        #expect(throws: JSONParseError.self) { try parser.parse(#"{"a":1,"\u0061":2}"#) }
        // Through the request decoder.
        let error = decodingError(#"{"op":"refund.create","order_id":"o1","method":"original","reason":"x","fee":{"order":1,"order":500}}"#)
        #expect(error?.code == .invalidJSON)
        #expect(error?.message == "not valid JSON: duplicate key 'order' (fee.order) at byte 88", "\(String(describing: error))")
        #expect(decodingError(#"{"op":"ping","id":1,"id":2}"#)?.message == "not valid JSON: duplicate key 'id' at byte 20")
        #expect(JSONParseError(.duplicateKey(key: "a", path: "a"), at: 3).description == "duplicate key 'a' at byte 3")
    }

    @Test("c: a number with a fraction or exponent, or beyond Int64, where an integer belongs is invalid_field")
    func integers() throws {
        for number in ["100.0", "1e2", "-0.5", "5E2", "500.00", "1.5"] {
            let error = decodingError(adding(#""fee":{"order":\#(number)}"#, to: create))
            #expect(error?.code == .invalidField, "\(number)")
            #expect(
                error?.message.hasPrefix("refund.create.fee.order: must be an integer without a fraction or exponent")
                    == true, "\(number): \(String(describing: error))")
        }
        for number in ["99999999999999999999", "9223372036854775808", "-9223372036854775809", "1e19", "1e300"] {
            let error = decodingError(adding(#""fee":{"order":\#(number)}"#, to: create))
            #expect(error?.code == .invalidField, "\(number)")
            #expect(error?.message.hasPrefix("refund.create.fee.order: number") == true, "\(number)")
            #expect(error?.message.hasSuffix("is out of range for Int64") == true, "\(number)")
        }
        // Other integer fields: an order line's price, a limit, an event sequence.
        let price = decodingError(put.replacingOccurrences(of: #""price":5000"#, with: #""price":5000.0"#))
        #expect(price?.message.hasPrefix("order.put.order.lines[0].price: must be an integer") == true)
        #expect(decodingError(#"{"op":"refund.list","limit":10.0}"#)?.message.hasPrefix("refund.list.limit:") == true)
        #expect(decodingError(#"{"op":"events.ack","up_to":1e2}"#)?.code == .invalidField)
        #expect(decodingError(#"{"op":"events.list","after":-1}"#)?.message.contains("out of range for UInt64") == true)
        // Integer literals in range are integers; a request id keeps Foundation's reading (`1.0` is 1).
        guard case .success(.refundCreate(_, let options)) = decodedOperation(adding(#""fee":{"order":500}"#, to: create))
        else {
            Issue.record("refund.create did not decode")
            return
        }
        #expect(options.fee == .order(500))
        #expect(try JSONValueDecoder().decode(Request.self, from: #"{"id":1.0,"op":"ping"}"#).id == .int(1))
        #expect(try JSONValueDecoder().decode(Double.self, from: "1") == 1)
    }

    @Test("d: a value that is no case of an enumeration lists the allowed values")
    func enumerations() throws {
        let kind = decodingError(put.replacingOccurrences(of: #""kind":"ticket""#, with: #""kind":"tshirt""#))
        #expect(kind?.code == .invalidField)
        #expect(
            kind?.message
                == "order.put.order.lines[0].kind: 'tshirt' is not one of ticket, product, fee, gift_voucher, deposit, wallet_top_up"
        )
        let cases: [(String, String)] = [
            (
                #"{"op":"refund.create","order_id":"o","method":"teleport","reason":"x"}"#,
                "refund.create.method: 'teleport' is not one of original, offline, balance, none"
            ),
            (
                #"{"op":"refund.list","status":"done"}"#,
                "refund.list.status: 'done' is not one of pending, succeeded, failed"
            ),
            (
                #"{"op":"order.moderate","order_id":"o","outcome":"ban"}"#,
                "order.moderate.outcome: 'ban' is not one of invalidate_refund, invalidate_no_refund"
            ),
            (
                #"{"op":"order.moderate","order_id":"o","outcomes":{"l1":"ban"}}"#,
                "order.moderate.outcomes.l1: 'ban' is not one of invalidate_refund, invalidate_no_refund"
            ),
            (
                #"{"op":"ping","actor":{"id":"a","permissions":["refund","root"]}}"#,
                "ping.actor.permissions[1]: 'root' is not one of refund, apply_cancellation_fee, cancel, override_fees, record_recovery, self_service, place_order, read, events, admin"
            ),
            (
                put.replacingOccurrences(of: #""method":"wallet""#, with: #""method":"cheque""#),
                "order.put.order.tenders[1].method: 'cheque' is not one of card, wallet, gift_card, cash, bank_transfer, other"
            ),
        ]
        for (line, message) in cases {
            #expect(decodingError(line)?.message == message, "\(line)")
        }
        // A value of the wrong type is still a type error, not an enumeration error.
        #expect(decodingError(#"{"op":"refund.list","status":3}"#)?.message == "refund.list.status must be a string")
    }

    @Test("docs/protocol.md: every refused request example is answered with the error shown under it")
    func documentedErrors() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        var checked = 0
        for (request, response) in zip(lines, lines.dropFirst()) where request.hasPrefix("→ {") && response.hasPrefix("← {") {
            let line = String(request.dropFirst(2))
            guard (try? JSONParser().parse(String(response.dropFirst(2))))?["ok"] == .bool(false),
                (try? JSONParser().parse(line)) != nil || isDuplicateKey(Array(line.utf8)),
                let error = decodingError(line)
            else { continue }
            let expected = try JSONParser().parse(String(response.dropFirst(2)))["error"]
            #expect(expected?["code"] == .string(error.code.rawValue), "\(line)")
            #expect(expected?["message"] == .string(error.message), "\(line)")
            checked += 1
        }
        #expect(checked >= 2)
    }

    @Test("e: refund.create dry_run is a preview; order.cancel and order.moderate take lines")
    func newFields() throws {
        guard case .success(.refundPreview(let id, let options)) = decodedOperation(adding(#""dry_run":true"#, to: create))
        else {
            Issue.record("dry_run did not decode to a preview")
            return
        }
        #expect(id == "o1" && options.method == .original && options.reason == "x")
        guard case .success(.refundCreate) = decodedOperation(adding(#""dry_run":false"#, to: create)) else {
            Issue.record("dry_run false did not decode to a create")
            return
        }
        #expect(decodingError(adding(#""dry_run":"yes""#, to: create))?.message == "refund.create.dry_run must be a boolean")
        guard
            case .success(.orderCancel("o1", true, .original, "fraud", nil, true, let lines)) = decodedOperation(
                #"{"op":"order.cancel","order_id":"o1","reason":"fraud","lines":["l1"]}"#)
        else {
            Issue.record("order.cancel with lines did not decode")
            return
        }
        #expect(lines == ["l1"])
        guard
            case .success(.orderModerate("o1", .invalidateRefund, nil, let moderated)) = decodedOperation(
                #"{"op":"order.moderate","order_id":"o1","outcome":"invalidate_refund","lines":["l2","l3"]}"#)
        else {
            Issue.record("order.moderate with lines did not decode")
            return
        }
        #expect(moderated == ["l2", "l3"])
        guard case .success(.orderCancel(_, _, _, _, _, _, nil)) = decodedOperation(
            #"{"op":"order.cancel","order_id":"o1","reason":"fraud"}"#)
        else {
            Issue.record("order.cancel without lines did not decode")
            return
        }
    }
}

/// An order's state as the daemon reports it: the view and the timeline, parsed.
func orderState(_ c: LineClient, _ orderID: String) throws -> NSDictionary {
    let view = try c.call(#"{"op":"order.get","order_id":"\#(orderID)"}"#)
    let timeline = try c.call(#"{"op":"order.timeline","order_id":"\#(orderID)"}"#)
    return ["view": view, "timeline": timeline] as NSDictionary
}

@Suite("strict requests against refundd")
struct StrictDaemonTests {
    @Test("rejected requests change nothing; refund.create dry_run previews and changes nothing")
    func dryRunAndRejections() throws {
        let daemon = try Daemon(["--partitions", "2"])
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("o1"))}"#)
        let before = try orderState(c, "o1")
        let events = try c.ok(#"{"op":"events.list"}"#)

        // The reported case: dry_run on refund.create. Same answer as refund.preview, nothing changes.
        let options = #""order_id":"o1","method":"original","reason":"x","fee":{"order":100}"#
        let dry = try c.ok(#"{"id":2,"op":"refund.create",\#(options),"dry_run":true}"#)
        let preview = try c.ok(#"{"id":3,"op":"refund.preview",\#(options)}"#)
        #expect(dry as NSDictionary == preview as NSDictionary)
        #expect(dry["amount"] as? Int == 3900)
        #expect(dry["refundable"] as? Bool == true)

        // Rejected: unknown fields (top level and nested), typos, a repeated key, a fraction, an unknown value.
        let rejected: [(String, String, String)] = [
            (
                #"{"id":4,"op":"refund.create",\#(options),"restok":false}"#, "invalid_field",
                "refund.create.restok is not a field of refund.create"
            ),
            (
                #"{"id":5,"op":"refund.create",\#(options),"include_booking_fees":true}"#, "invalid_field",
                "refund.create.include_booking_fees is not a field of refund.create"
            ),
            (
                #"{"id":6,"op":"order.cancel","order_id":"o1","reason":"x","fees":{"order":1}}"#, "invalid_field",
                "order.cancel.fees is not a field of order.cancel"
            ),
            (
                #"{"id":7,"op":"refund.create","order_id":"o1","method":"original","reason":"x","fee":{"order":100,"x":1}}"#,
                "invalid_field", "refund.create.fee.x is not a field of a fee"
            ),
            (
                #"{"id":8,"op":"refund.create",\#(options),"actor":{"id":"ops","permission":["refund"]}}"#,
                "invalid_field", "refund.create.actor.permission is not a field of an actor"
            ),
            (
                #"{"id":9,"op":"refund.create","order_id":"o1","method":"original","reason":"x","fee":{"order":100.0}}"#,
                "invalid_field", "refund.create.fee.order: must be an integer without a fraction or exponent, not 100.0"
            ),
            (
                #"{"id":10,"op":"refund.create","order_id":"o1","method":"origin","reason":"x"}"#, "invalid_field",
                "refund.create.method: 'origin' is not one of original, offline, balance, none"
            ),
            (
                #"{"id":11,"op":"order.moderate","order_id":"o1","outcome":"invalidate_refund","notes":"x"}"#,
                "invalid_field", "order.moderate.notes is not a field of order.moderate"
            ),
        ]
        for (line, code, message) in rejected {
            let response = try c.fails(line, code)
            #expect((response["error"] as? [String: Any])?["message"] as? String == message, "\(response)")
            #expect(response["id"] != nil && !(response["id"] is NSNull), "\(response)")
        }
        let duplicate = try c.fails(
            #"{"id":12,"op":"refund.create","order_id":"o1","method":"original","reason":"x","reason":"y"}"#,
            "invalid_json")
        #expect(((duplicate["error"] as? [String: Any])?["message"] as? String)?.contains("duplicate key 'reason'") == true)
        // A new order with a misspelt line field is not stored.
        let misspelt = simpleOrderJSON("o2").replacingOccurrences(of: #""price":2000}"#, with: #""price":2000,"prise":2000}"#)
        try c.fails(#"{"id":13,"op":"order.put","order":\#(misspelt)}"#, "invalid_field")
        try c.fails(#"{"id":14,"op":"order.get","order_id":"o2"}"#, "order_not_found")

        #expect(try orderState(c, "o1") == before)
        let eventsAfter = try c.ok(#"{"op":"events.list"}"#)
        #expect(eventsAfter as NSDictionary == events as NSDictionary)
        let stats = try c.ok(#"{"op":"stats"}"#)
        #expect(stats["refunds"] as? Int == 0)
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("order.cancel and order.moderate with lines touch only those lines")
    func perLineCancel() throws {
        let daemon = try Daemon(["--partitions", "2"])
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("o1"))}"#)
        let cancelled = try c.ok(#"{"id":2,"op":"order.cancel","order_id":"o1","reason":"fraud","lines":["a"]}"#)
        #expect((cancelled["lines"] as? [[String: Any]])?.compactMap { $0["line"] as? String } == ["a"])
        #expect(cancelled["amount"] as? Int == 2000)
        var view = try c.ok(#"{"id":3,"op":"order.get","order_id":"o1"}"#)
        var status = Dictionary(
            uniqueKeysWithValues: (view["lines"] as? [[String: Any]] ?? []).map {
                ($0["id"] as? String ?? "", $0["status"] as? String ?? "")
            })
        #expect(status["b"] == "active", "\(view)")
        #expect(status["a"] != "active", "\(view)")
        #expect((view["totals"] as? [String: Any])?["refunded"] as? Int == 2000)

        // A line that does not exist: refused, nothing changes.
        let before = try orderState(c, "o1")
        try c.fails(#"{"id":4,"op":"order.cancel","order_id":"o1","reason":"fraud","lines":["zz"]}"#, "line_not_found")
        #expect(try orderState(c, "o1") == before)

        // Moderation of one line of another order, without money.
        _ = try c.ok(#"{"id":5,"op":"order.put","order":\#(simpleOrderJSON("o2"))}"#)
        let moderated = try c.ok(
            #"{"id":6,"op":"order.moderate","order_id":"o2","outcome":"invalidate_no_refund","lines":["b"]}"#)
        #expect((moderated["lines"] as? [[String: Any]])?.compactMap { $0["line"] as? String } == ["b"])
        #expect(moderated["method"] as? String == "none")
        view = try c.ok(#"{"id":7,"op":"order.get","order_id":"o2"}"#)
        status = Dictionary(
            uniqueKeysWithValues: (view["lines"] as? [[String: Any]] ?? []).map {
                ($0["id"] as? String ?? "", $0["status"] as? String ?? "")
            })
        #expect(status["a"] == "active" && status["b"] != "active", "\(view)")
        // The rest of the order can still be cancelled.
        let rest = try c.ok(#"{"id":8,"op":"order.cancel","order_id":"o1","reason":"fraud"}"#)
        #expect((rest["lines"] as? [[String: Any]])?.compactMap { $0["line"] as? String } == ["b"])

        // An outcome per line: a refund for one ticket, a cancellation without money for the other, together.
        _ = try c.ok(#"{"id":9,"op":"order.put","order":\#(simpleOrderJSON("o3"))}"#)
        try c.fails(
            #"{"id":10,"op":"order.moderate","order_id":"o3","outcome":"invalidate_refund","outcomes":{"a":"invalidate_refund"}}"#,
            "invalid_field")
        let untouched = try orderState(c, "o3")
        try c.fails(
            #"{"id":11,"op":"order.moderate","order_id":"o3","outcomes":{"a":"invalidate_refund","zz":"invalidate_no_refund"}}"#,
            "line_not_found")
        #expect(try orderState(c, "o3") == untouched)
        let both = try c.ok(
            #"{"id":12,"op":"order.moderate","order_id":"o3","outcomes":{"a":"invalidate_refund","b":"invalidate_no_refund"},"note":"ban"}"#)
        let refunds = try #require(both["refunds"] as? [[String: Any]])
        #expect(refunds.map { $0["method"] as? String } == ["none", "original"])
        #expect(refunds.map { ($0["lines"] as? [[String: Any]])?.compactMap { $0["line"] as? String } ?? [] } == [["b"], ["a"]])
        #expect(refunds.map { $0["amount"] as? Int } == [0, 2000])
        #expect(refunds.allSatisfy { $0["reason"] as? String == "moderation" && $0["note"] as? String == "ban" })
        view = try c.ok(#"{"id":13,"op":"order.get","order_id":"o3"}"#)
        #expect((view["lines"] as? [[String: Any]])?.allSatisfy { $0["status"] as? String != "active" } == true, "\(view)")
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }
}

@Suite("order.get include: the compact view")
struct CompactOrderViewTests {
    @Test("without include the full view; with it the compact one and only the parts named")
    func compact() throws {
        let daemon = try Daemon(["--partitions", "2"])
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("oc"))}"#)
        _ = try c.ok(#"{"id":2,"op":"order.cancel","order_id":"oc","reason":"fraud","lines":["a"]}"#)
        let full = try c.ok(#"{"id":3,"op":"order.get","order_id":"oc"}"#)
        #expect(Set(full.keys) == ["order", "status", "totals", "lines", "tenders", "refunds", "disputed", "requests"])
        let compact = try c.ok(#"{"id":4,"op":"order.get","order_id":"oc","include":[]}"#)
        #expect(Set(compact.keys) == ["order_id", "event", "currency", "status", "totals", "lines", "tenders", "disputed"])
        #expect(compact["order_id"] as? String == "oc" && compact["currency"] as? String == "GBP")
        #expect((compact["totals"] as? [String: Any])?["refunded"] as? Int == 2000)
        let some = try c.ok(#"{"id":5,"op":"order.get","order_id":"oc","include":["refunds"]}"#)
        #expect(Set(some.keys) == Set(compact.keys).union(["refunds"]))
        #expect((some["refunds"] as? [[String: Any]])?.count == 1)
        // Pipelined in one read (the batch path) and alone: the same answers.
        let lines = [
            #"{"id":6,"op":"order.get","order_id":"oc","include":["order","requests"]}"#,
            #"{"id":7,"op":"order.get","order_id":"oc"}"#,
        ]
        #expect(c.send(bytes: Array(lines.map { $0 + "\n" }.joined().utf8)))
        let answers = [try c.readObject(), try c.readObject()]
        let both = try #require(answers.first?["result"] as? [String: Any])
        #expect(Set(both.keys) == Set(compact.keys).union(["order", "requests"]))
        #expect(Set((answers.last?["result"] as? [String: Any])?.keys.map { $0 } ?? []) == Set(full.keys))
        try c.fails(#"{"id":8,"op":"order.get","order_id":"oc","include":["timeline"]}"#, "invalid_field")
        try c.fails(#"{"id":9,"op":"order.get","order_id":"oc","include":"refunds"}"#, "invalid_field")
    }
}

@Suite("order.update: facts that are not money, after refunds too")
struct OrderUpdateProtocolTests {
    @Test("a ticket transferred back is refundable; money fields are not fields of an update; needs place_order")
    func update() throws {
        let daemon = try Daemon(["--partitions", "2"])
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        let order = simpleOrderJSON("ou").replacingOccurrences(of: #""price":2000}]"#, with: #""price":2000,"transferred":true}]"#)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(order)}"#)
        _ = try c.ok(#"{"id":2,"op":"refund.create","order_id":"ou","lines":["a"],"method":"original","reason":"x"}"#)
        try c.fails(#"{"id":3,"op":"refund.create","order_id":"ou","lines":["b"],"method":"original","reason":"x"}"#, "transferred_after_checkout")
        let before = try orderState(c, "ou")
        try c.fails(#"{"id":4,"op":"order.update","order_id":"ou","lines":[{"id":"b","price":1}]}"#, "invalid_field")
        try c.fails(#"{"id":5,"op":"order.update","order_id":"ou","lines":[{"id":"zz","transferred":false}]}"#, "line_not_found")
        try c.fails(#"{"id":6,"op":"order.update","order_id":"ou"}"#, "missing_field")
        try c.fails(
            #"{"id":7,"op":"order.update","order_id":"ou","frozen":true,"actor":{"id":"viewer","permissions":["read"]}}"#,
            "permission_denied")
        #expect(try orderState(c, "ou") == before)
        let view = try c.ok(#"{"id":8,"op":"order.update","order_id":"ou","lines":[{"id":"b","transferred":false}]}"#)
        let lines = try #require((view["order"] as? [String: Any])?["lines"] as? [[String: Any]])
        #expect(lines.last?["transferred"] as? Bool == false)
        let refund = try c.ok(#"{"id":9,"op":"refund.create","order_id":"ou","lines":["b"],"method":"original","reason":"x"}"#)
        #expect(refund["amount"] as? Int == 2000)
        let timeline = try c.ok(#"{"id":10,"op":"order.timeline","order_id":"ou"}"#)
        let kinds = (timeline["timeline"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } ?? []
        #expect(kinds.contains("order.updated"), "\(kinds)")
    }
}
