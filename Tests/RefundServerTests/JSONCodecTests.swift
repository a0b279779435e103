import DaemonTestSupport
import Foundation
import RefundCore
import RefundEngine
import Testing


@testable import RefundServer
@testable import refundd

// The protocol's hand-written JSON codec (Sources/RefundServer/JSON), checked against Foundation: the same values
// from the same bytes (JSONDecoder, JSONSerialization), output that Foundation reads back to the same value, the
// same request decoding and error mapping, errors (never a crash) on invalid input.

// MARK: Helpers

/// Numbers as Foundation's `JSONDecoder` gives them back through `Decodable` (an integral number in range is an
/// integer whatever its spelling: `1e2` is 100): exact integers up to 2^53 are ints, every other number a Double,
/// on both sides before comparing. (Foundation reads `4.968271595808735E+17` as the integer 496827159580873500,
/// which no Double is; this codec gives the Double.)
func normalized(_ value: JSONValue) -> JSONValue {
    switch value {
    case .double(let d) where d == d.rounded() && abs(d) <= 9_007_199_254_740_992: .int(Int64(d))
    case .int(let i) where i.magnitude > 9_007_199_254_740_992: .double(Double(i))
    case .array(let elements): .array(elements.map(normalized))
    case .object(let members): .object(members.map { ($0.key, normalized($0.value)) })
    default: value
    }
}

let foundationDecoder = JSONDecoder()

/// Foundation's reading of `bytes` (JSONDecoder into JSONValue's Decodable), nil when it refuses them.
func foundationValue(_ bytes: [UInt8]) -> JSONValue? {
    try? foundationDecoder.decode(JSONValue.self, from: Data(bytes))
}

func parse(_ bytes: [UInt8]) -> JSONValue? { try? JSONParser().parse(bytes) }

func parseError(_ text: String) -> JSONParseError? {
    do {
        _ = try JSONParser().parse(text)
        return nil
    } catch {
        return error
    }
}

func parseError(_ bytes: [UInt8]) -> JSONParseError? {
    do {
        _ = try JSONParser().parse(bytes)
        return nil
    } catch {
        return error
    }
}

/// JSONSerialization's value as a JSONValue (an independent parser for checking encoder output).
func serializationValue(_ bytes: [UInt8]) -> JSONValue? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else {
        return nil
    }
    return fromFoundation(object)
}

func fromFoundation(_ object: Any) -> JSONValue? {
    switch object {
    case is NSNull: return .null
    case let s as String: return .string(s)
    case let n as NSNumber:
        let type = String(cString: n.objCType)
        if type == "c" || type == "B" { return .bool(n.boolValue) }
        if type == "d" || type == "f" { return normalized(.double(n.doubleValue)) }
        if type == "Q" { return n.uint64Value <= UInt64(Int64.max) ? .int(n.int64Value) : .double(n.doubleValue) }
        return .int(n.int64Value)
    case let a as [Any]:
        var out: [JSONValue] = []
        for element in a {
            guard let v = fromFoundation(element) else { return nil }
            out.append(v)
        }
        return .array(out)
    case let d as [String: Any]:
        var out: [(key: String, value: JSONValue)] = []
        for (k, element) in d {
            guard let v = fromFoundation(element) else { return nil }
            out.append((k, v))
        }
        return .object(out)
    default: return nil
    }
}

/// Random JSON documents with their expected value: nesting, every kind of string character and escape
/// (astral characters as raw UTF-8 or surrogate-pair escapes), numbers at the Int64 edges and beyond, whitespace.
struct DocumentGenerator {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    mutating func whitespace() -> String { chance(75) ? "" : pick([" ", "\t", "\n", "\r\n", "  ", " \n\t "]) }

    static let scalars: [Unicode.Scalar] = [
        "\u{0}", "\u{1}", "\u{8}", "\u{9}", "\u{A}", "\u{C}", "\u{D}", "\u{1F}", "\"", "\\", "/", "\u{7F}", "é", "ß",
        "Ω", "€", "中", "\u{2028}", "\u{FEFF}", "\u{FFFD}", "\u{FFFF}", "\u{E000}", "😀", "\u{1D11E}", "\u{10FFFF}",
        "\u{10000}",
    ]

    mutating func stringValue() -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<int(0...12) {
            if chance(55) {
                s.append(Unicode.Scalar(UInt8(int(0x20...0x7E))))
            } else {
                s.append(pick(Self.scalars))
            }
        }
        return String(s)
    }

    mutating func hex4(_ unit: UInt16) -> String {
        let digits = String(unit, radix: 16, uppercase: chance(50))
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }

    /// The JSON text of `s`, with randomly chosen escapes.
    mutating func stringText(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            let escape = chance(25)
            switch scalar {
            case "\"": out += escape ? hex4(0x22) : "\\\""
            case "\\": out += escape ? hex4(0x5C) : "\\\\"
            case "/": out += escape ? "\\/" : "/"
            case "\u{8}": out += escape ? hex4(8) : "\\b"
            case "\u{C}": out += escape ? hex4(0xC) : "\\f"
            case "\u{A}": out += escape ? hex4(0xA) : "\\n"
            case "\u{D}": out += escape ? hex4(0xD) : "\\r"
            case "\u{9}": out += escape ? hex4(9) : "\\t"
            case _ where scalar.value < 0x20: out += hex4(UInt16(scalar.value))
            case _ where escape:
                for unit in String(scalar).utf16 { out += hex4(unit) }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static let integerEdges: [Int64] = [
        .min, .min + 1, -9_007_199_254_740_993, -9_007_199_254_740_992, -1, 0, 1, 9_007_199_254_740_992,
        9_007_199_254_740_993, .max - 1, .max,
    ]
    static let beyondInt64 = [
        "9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
        "99999999999999999999", "-123456789012345678901234567890",
    ]

    mutating func number() -> (JSONValue, String) {
        switch int(0...9) {
        case 0...2:
            let i = pick(Self.integerEdges)
            return (.int(i), String(i))
        case 3...4:
            let i = Int64(truncatingIfNeeded: rng.next()) >> int(0...63)
            return (.int(i), String(i))
        case 5:
            let text = pick(Self.beyondInt64)
            return (.double(Double(text) ?? 0), text)
        case 6:
            // An integer spelled as a fraction or with an exponent is a Double.
            let i = Int64(int(-1_000_000...1_000_000))
            let text = chance(50) ? "\(i).0" : "\(i)e0"
            return (.double(Double(text) ?? 0), text)
        default:
            var d = Double(bitPattern: rng.next())
            if !d.isFinite { d = 0.5 }
            if chance(50) { d = Double(int(-100_000...100_000)) / 64 + 0.25 }
            var text = d.description
            if chance(30) { text = text.replacingOccurrences(of: "e", with: "E") }
            return (.double(Double(text) ?? 0), text)
        }
    }

    mutating func value(depth: Int = 0) -> (JSONValue, String) {
        let kinds = depth >= 6 ? 5 : 7
        switch int(0...kinds) {
        case 0: return (.null, "null")
        case 1:
            let b = chance(50)
            return (.bool(b), b ? "true" : "false")
        case 2, 3: return number()
        case 4, 5:
            let s = stringValue()
            return (.string(s), stringText(s))
        case 6:
            var elements: [JSONValue] = []
            var texts: [String] = []
            for _ in 0..<int(0...max(0, 5 - depth)) {
                let (v, t) = value(depth: depth + 1)
                elements.append(v)
                texts.append(whitespace() + t + whitespace())
            }
            return (.array(elements), "[" + whitespace() + texts.joined(separator: ",") + "]")
        default:
            var members: [(key: String, value: JSONValue)] = []
            var texts: [String] = []
            for index in 0..<int(0...max(0, 5 - depth)) {
                let key = stringValue() + String(index)  // unique keys
                let (v, t) = value(depth: depth + 1)
                members.append((key, v))
                texts.append(whitespace() + stringText(key) + whitespace() + ":" + whitespace() + t + whitespace())
            }
            return (.object(members), "{" + whitespace() + texts.joined(separator: ",") + "}")
        }
    }

    mutating func document() -> (JSONValue, [UInt8]) {
        let (v, t) = value()
        return (v, Array((whitespace() + t + whitespace()).utf8))
    }
}

/// Every line of docs/protocol.md that looks like a JSON object: request and response examples, in code blocks
/// and in the tables. Some are abbreviated (`…`, `"order_id"?`) and so not JSON: both parsers must refuse those.
func protocolDocCandidates() throws -> [String] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let text = try String(contentsOf: root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
    var out: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        var l = line.trimmingCharacters(in: .whitespaces)
        for prefix in ["→ ", "← "] where l.hasPrefix(prefix) { l = String(l.dropFirst(prefix.count)) }
        if l.hasPrefix("{") { out.append(l) }
        // Inline code spans in tables.
        let parts = line.split(separator: "`", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() where index % 2 == 1 && part.hasPrefix("{") {
            out.append(String(part))
        }
    }
    return out
}

/// Requests for every op, with every parameter, as a client sends them.
let requestCorpus: [String] = [
    #"{"id":1,"op":"auth","token":"secret"}"#,
    #"{"id":"p","op":"ping"}"#,
    #"{"id":"hl","op":"hello"}"#,
    #"{"id":"tr","op":"order.transfer","order_id":"ord_1","line":"l1","to":"att_1"}"#,
    #"{"id":"tb","op":"order.transfer","order_id":"ord_1","line":"l1","to":null}"#,
    #"{"id":"tp","op":"order.transfer","order_id":"ord_1","line":"l1","to":"att_2","pending":true}"#,
    #"{"id":"ta","op":"transfer.accept","order_id":"ord_1","line":"l1"}"#,
    #"{"id":"tc","op":"transfer.cancel","order_id":"ord_1","line":"l1"}"#,
    #"{"id":"em","op":"event.put","event":"evt_1","members_only":true}"#,
    #"{"id":"h2","op":"hello","protocol_version":2}"#,
    #"{"id":2,"op":"order.put","order":\#(orderJSON)}"#,
    #"{"id":"pm","op":"order.put_many","orders":[\#(orderJSON)]}"#,
    #"{"id":3,"op":"order.get","order_id":"ord_1"}"#,
    #"{"id":"ol","op":"order.list","event":"evt_1","customer":"cus_9","email":"a@example.com","status":"completed","disputed":false,"refunds":"failed","limit":10,"cursor":"i1.ord_0"}"#,
    #"{"id":4,"op":"order.timeline","order_id":"ord_1"}"#,
    #"{"id":5,"op":"order.cancel","order_id":"ord_1","reason":"fraud","refund":false,"method":"original","note":null,"restock":true}"#,
    #"{"id":6,"op":"order.moderate","order_id":"ord_1","outcome":"invalidate_refund","note":"dup"}"#,
    #"{"id":"6b","op":"order.moderate","order_id":"ord_1","outcomes":{"l1":"invalidate_refund","l2":"invalidate_no_refund"}}"#,
    #"{"id":7,"op":"refund.preview","order_id":"ord_1","lines":["l1"],"fee":{"each":100}}"#,
    #"{"id":8,"op":"refund.create","order_id":"ord_1","method":"original","fee":{"order":500},"reason":"event_cancelled"}"#,
    #"{"id":9,"op":"refund.create","order_id":"ord_1","lines":["l1","l2"],"method":"balance","fee":{"per_line":{"l1":100}},"reason":"customer_request","note":"n","restock":false,"include_processing_fees":false,"include_platform_fees":true,"include_booking_fee":true,"policy":"full","notify":false,"email_text":"Sorry \u00e9\ud83d\ude00","idempotency_key":"k1","self_service":false,"actor":{"id":"ops_1","permissions":["refund","override_fees","apply_cancellation_fee"]}}"#,
    #"{"id":10,"op":"refund.get","refund_id":"rf_1_ord_1"}"#,
    #"{"id":11,"op":"refund.list","order_id":"ord_1","event":"evt_1","status":"pending","limit":10}"#,
    #"{"id":12,"op":"refund.settle","refund_id":"rf_1_ord_1","tender":"t1","succeeded":false,"reference":"r","failure_code":"card_declined","retryable":true}"#,
    #"{"id":13,"op":"refund.retry","refund_id":"rf_1_ord_1"}"#,
    #"{"id":14,"op":"refund.recover","refund_id":"rf_1_ord_1","action":"contacted_buyer","note":"called"}"#,
    #"{"id":15,"op":"refund.receipt","refund_id":"rf_1_ord_1"}"#,
    #"{"id":16,"op":"refund.resend","refund_id":"rf_1_ord_1"}"#,
    #"{"id":17,"op":"refund.attention","limit":5}"#,
    #"{"id":18,"op":"refund.request","order_id":"ord_1","lines":["l1"],"reason":"cannot attend","actor":{"id":"cus_9","permissions":["self_service"]}}"#,
    #"{"id":19,"op":"refund.requests"}"#,
    #"{"id":20,"op":"refund.approve","request_id":"rq_1_ord_1","method":"offline","admin_note":"ok","note":"x"}"#,
    #"{"id":21,"op":"refund.decline","request_id":"rq_1_ord_1","note":"no"}"#,
    #"{"id":22,"op":"dispute.open","order_id":"ord_1","reason":"chargeback"}"#,
    #"{"id":23,"op":"dispute.close","order_id":"ord_1","outcome":"won","note":"ok"}"#,
    #"{"id":24,"op":"balance.get","customer":"cus_9"}"#,
    #"{"id":25,"op":"inventory.get","ticket_type":"tt_ga"}"#,
    #"{"id":26,"op":"bulk.cancel_event","events":["evt_1"],"payment_method":"card","channel":"box_office","method":"original","fee":{"order":200},"reason":"event_cancelled","dry_run":true,"wait":false}"#,
    #"{"id":27,"op":"bulk.status","job_id":"job_1"}"#,
    #"{"id":"27p","op":"bulk.pause","job_id":"job_1"}"#,
    #"{"id":"27r","op":"bulk.resume","job_id":"job_1"}"#,
    #"{"id":"27a","op":"bulk.abort","job_id":"job_1"}"#,
    #"{"id":"27e","op":"event.put","event":"evt_1","self_service_cutoff_hours":48}"#,
    #"{"id":"27g","op":"event.get","event":"evt_1"}"#,
    #"{"id":"27o","op":"order.get","order_id":"ord_1","include":["refunds"]}"#,
    #"{"id":"27u","op":"order.update","order_id":"ord_1","frozen":false,"lines":[{"id":"l1","transferred":false}]}"#,
    #"{"id":"br","op":"bulk.results","job_id":"job_1","status":"failed","limit":50,"cursor":"b1.0.0.0"}"#,
    #"{"id":"s","op":"events.subscribe","after":0}"#,
    #"{"id":28,"op":"events.list","after":7,"limit":1000}"#,
    #"{"id":29,"op":"events.ack","up_to":42}"#,
    #"{"id":30,"op":"stats"}"#,
    #"{"id":31,"op":"snapshot"}"#,
    #" { "op" : "order.get" , "order_id" : "ord_\u0031" , "actor" : { "id" : "ops_\u0031" } } "#,
    #"{"id":1.0,"op":"ping"}"#,
    #"{"id":-9223372036854775808,"op":"ping"}"#,
    #"{"id":9223372036854775808,"op":"ping"}"#,
    #"{"id":2.5,"op":"ping"}"#,
    #"{"id":true,"op":"ping"}"#,
    #"{"id":null,"op":"ping"}"#,
    #"{"id":1,"op":"events.list","after":100}"#,
]

/// Requests with a bad field: the error (code and message, with the field path) must be Foundation's.
let badRequestCorpus: [String] = [
    #"{"id":"hv","op":"hello","protocol_version":"2"}"#,
    #"{"id":"tm","op":"order.transfer","order_id":"ord_1","line":"l1"}"#,
    #"{"id":"tn","op":"order.transfer","order_id":"ord_1","line":"l1","to":5}"#,
    #"{"id":5,"op":"order.explode"}"#,
    #"{"id":6}"#,
    #"{"id":7,"op":7}"#,
    #"{"id":8,"op":"order.get"}"#,
    #"{"id":9,"op":"order.get","order_id":["x"]}"#,
    #"{"id":9,"op":"order.get","order_id":null}"#,
    #"{"id":10,"op":"refund.create","order_id":"o","method":"teleport","reason":"x"}"#,
    #"{"id":11,"op":"order.put","order":{"id":"o"}}"#,
    #"{"id":11,"op":"order.put","order":[]}"#,
    #"{"id":11,"op":"order.put","order":null}"#,
    #"{"id":12,"op":"refund.list","limit":-1}"#,
    #"{"id":{"a":1},"op":"ping"}"#,
    #"{"id":[1],"op":"ping"}"#,
    #"{"id":15,"op":"refund.create","order_id":"o","method":"original","reason":"x","actor":{"id":"a","permissions":["root"]}}"#,
    #"{"id":15,"op":"refund.create","order_id":"o","method":"original","reason":"x","actor":{"permissions":[]}}"#,
    #"{"id":15,"op":"refund.create","order_id":"o","method":"original","reason":"x","actor":"me"}"#,
    #"{"id":16,"op":"refund.create","order_id":"o","method":"original","reason":"x","fee":{"order":1,"each":2}}"#,
    #"{"id":16,"op":"refund.create","order_id":"o","method":"original","reason":"x","fee":{"per_line":{"l1":"x"}}}"#,
    #"{"id":16,"op":"refund.create","order_id":"o","method":"original","reason":"x","lines":["l1",2]}"#,
    #"{"id":17,"op":"refund.settle","refund_id":"r","tender":"t1"}"#,
    #"{"id":17,"op":"refund.settle","refund_id":"r","tender":"t1","succeeded":1}"#,
    #"{"id":18,"op":"events.ack","up_to":-1}"#,
    #"{"id":18,"op":"events.ack","up_to":"1"}"#,
    #"{"id":19,"op":"order.put","order":\#(orderJSON.replacingOccurrences(of: #""price":5000"#, with: #""price":"5000""#))}"#,
    #"{"id":19,"op":"order.put","order":\#(orderJSON.replacingOccurrences(of: #""price":5000,"#, with: ""))}"#,
    #"{"id":19,"op":"order.put","order":\#(orderJSON.replacingOccurrences(of: #""method":"wallet""#, with: #""method":"cheque""#))}"#,
    #"{"id":19,"op":"order.put","order":\#(orderJSON.replacingOccurrences(of: #""currency":"GBP""#, with: #""currency":12"#))}"#,
    #"[1,2]"#,
    #"42"#,
    #""op""#,
    #"null"#,
]

let sampleOrder = CodecMeasurement.sampleOrder()
let orderJSON = String(decoding: (try? JSONBytesEncoder().encode(sampleOrder)) ?? [], as: UTF8.self)

/// How a request line decodes, in enough detail to compare two decoders.
func outcome(_ line: String, foundation: Bool) -> String {
    let request: Request
    do {
        request =
            foundation
            ? try JSONDecoder().decode(Request.self, from: Data(line.utf8))
            : try JSONValueDecoder().decode(Request.self, from: Array(line.utf8))
    } catch {
        return "refused \(RefundError.from(decoding: error).code.rawValue)"
    }
    let caller = "\(request.caller.id) \(request.caller.permissions.map(\.rawValue).sorted())"
    let head = "id=\(request.id) op=\(request.op ?? "-") caller=\(caller) actor=\(request.actorID ?? "-")"
    switch request.operation {
    case .success(.orderPut(let order)):
        return head + " orderPut \(String(decoding: (try? JSONBytesEncoder().encode(order)) ?? [], as: UTF8.self))"
    case .success(let operation): return head + " \(operation)"
    case .failure(let error): return head + " error \(error.code.rawValue): \(error.message)"
    }
}

// MARK: Tests

@Suite("JSON codec (parser, decoder, encoder) against Foundation")
struct JSONCodecTests {
    @Test("parses scalars, strings and numbers exactly")
    func basics() throws {
        let parser = JSONParser()
        #expect(try parser.parse("null") == .null)
        #expect(try parser.parse(" true ") == .bool(true))
        #expect(try parser.parse("false") == .bool(false))
        #expect(try parser.parse("0") == .int(0))
        #expect(try parser.parse("-0") == .int(0))
        #expect(try parser.parse("9223372036854775807") == .int(.max))
        #expect(try parser.parse("-9223372036854775808") == .int(.min))
        #expect(try parser.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try parser.parse("1.5") == .double(1.5))
        #expect(try parser.parse("-2.5E-3") == .double(-0.0025))
        #expect(try parser.parse("1e2") == .double(100))
        #expect(try parser.parse(#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#) == .string("a\"\\/\u{8}\u{C}\n\r\té😀"))
        #expect(try parser.parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parser.parse("\"😀é中\"") == .string("😀é中"))
        #expect(try parser.parse(#"{"a":[1,{"b":null}],"c":"d"}"#)["a"]?[1]?["b"] == .null)
        // A repeated key is an error (Foundation's JSONDecoder keeps one of them; see StrictRequestTests).
        #expect(throws: JSONParseError(.duplicateKey(key: "a", path: "a"), at: 7)) { try parser.parse(#"{"a":1,"a":2}"#) }
        // A UTF-8 byte order mark is skipped, as Foundation's JSONDecoder does.
        #expect(try parser.parse([0xEF, 0xBB, 0xBF] + Array("[1]".utf8)) == .array([.int(1)]))
    }

    @Test("invalid documents: clear errors with the byte offset")
    func errors() throws {
        let cases: [(String, JSONParseError.Reason, Int)] = [
            ("", .unexpectedEnd, 0),
            ("   ", .unexpectedEnd, 3),
            ("[1,2,x]", .unexpectedByte(UInt8(ascii: "x")), 5),
            ("[1,2", .unexpectedEnd, 4),
            ("[1,]", .unexpectedByte(UInt8(ascii: "]")), 3),
            (#"{"a":1,}"#, .unexpectedByte(UInt8(ascii: "}")), 7),
            (#"{"a" 1}"#, .unexpectedByte(UInt8(ascii: "1")), 5),
            ("{1:2}", .unexpectedByte(UInt8(ascii: "1")), 1),
            ("01", .leadingZero, 0),
            ("[-012]", .leadingZero, 1),
            ("-", .unexpectedEnd, 1),
            ("-a", .invalidNumber, 1),
            ("1.", .unexpectedEnd, 2),
            ("1.e5", .invalidNumber, 2),
            ("1e", .unexpectedEnd, 2),
            ("1e+", .unexpectedEnd, 3),
            ("+1", .unexpectedByte(UInt8(ascii: "+")), 0),
            (".5", .unexpectedByte(UInt8(ascii: ".")), 0),
            ("1e400", .numberOutOfRange, 0),
            ("-1e400", .numberOutOfRange, 0),
            ("NaN", .unexpectedByte(UInt8(ascii: "N")), 0),
            ("Infinity", .unexpectedByte(UInt8(ascii: "I")), 0),
            ("tru", .unexpectedEnd, 3),
            ("nul1", .unexpectedByte(UInt8(ascii: "1")), 3),
            ("[1] x", .trailingCharacters, 4),
            ("{} {}", .trailingCharacters, 3),
            (#""abc"#, .unexpectedEnd, 4),
            (#""\x""#, .invalidEscape, 1),
            (#""\U0041""#, .invalidEscape, 1),
            (#""\u00zz""#, .invalidEscape, 5),
            (#""\u12""#, .invalidEscape, 5),
            (#""\ud800""#, .loneSurrogate, 1),
            (#""\udc00""#, .loneSurrogate, 1),
            (#""\ud800\u0041""#, .loneSurrogate, 1),
            (#""\ud800x""#, .loneSurrogate, 1),
            (#""\ude00\ud83d""#, .loneSurrogate, 1),
            (#""\ud83d\ud83d""#, .loneSurrogate, 1),
            ("\"a\tb\"", .controlCharacter, 2),
            ("\"a\nb\"", .controlCharacter, 2),
        ]
        for (text, reason, offset) in cases {
            let error = parseError(text)
            #expect(
                error == JSONParseError(reason, at: offset), "\(text.debugDescription): \(String(describing: error))")
            // Foundation's JSONDecoder accepts trailing commas; RFC 8259 (and this parser) does not.
            if !text.hasSuffix(",]") && !text.hasSuffix(",}") {
                #expect(foundationValue(Array(text.utf8)) == nil, "Foundation accepts \(text.debugDescription)")
            }
        }
        #expect(parseError("[1,2,x]")?.description == "unexpected character 'x' at byte 5")
        // Every raw control character is refused inside a string; escaped, each is accepted.
        for byte in UInt8(0)..<0x20 {
            #expect(parseError([UInt8(ascii: "\""), byte, UInt8(ascii: "\"")])?.reason == .controlCharacter)
            let escaped = String(byte, radix: 16)
            let text = "\"\\u" + String(repeating: "0", count: 4 - escaped.count) + escaped + "\""
            #expect(try JSONParser().parse(text) == .string(String(Unicode.Scalar(byte))))
        }
    }

    @Test("invalid UTF-8 is refused wherever it is, as Foundation refuses it")
    func invalidUTF8() {
        let bad: [[UInt8]] = [
            [0xFF], [0xFE], [0x80], [0xBF], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xE0, 0x9F, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0xAF], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xC3], [0xE2, 0x82],
            [0xF0, 0x9F, 0x98], [0xC3, 0x41], [0xE2, 0x41, 0x82], [0xF0, 0x9F, 0x41, 0x80],
        ]
        for sequence in bad {
            let inString = Array(#"{"k":"a"#.utf8) + sequence + Array(#"b"}"#.utf8)
            #expect(parseError(inString)?.reason == .invalidUTF8, "\(sequence)")
            #expect(parseError(inString)?.offset == 7, "\(sequence)")
            #expect(foundationValue(inString) == nil, "Foundation accepts \(sequence)")
            let inKey = Array(#"{"a"#.utf8) + sequence + Array(#"":1}"#.utf8)
            #expect(parseError(inKey)?.reason == .invalidUTF8, "\(sequence)")
            #expect(parseError(Array("[1,".utf8) + sequence + Array("]".utf8)) != nil)
            #expect(parseError(Array("[1]".utf8) + sequence) != nil)
        }
        // The longest valid sequences of each length are accepted.
        for good: [UInt8] in [
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80],
            [0xF4, 0x8F, 0xBF, 0xBF],
        ] {
            let doc = [UInt8(ascii: "\"")] + good + [UInt8(ascii: "\"")]
            #expect(parse(doc) == .string(String(decoding: good, as: UTF8.self)), "\(good)")
            #expect(parse(doc) == foundationValue(doc))
        }
    }

    @Test("nesting: 512 levels are accepted, 513 and 100,000 are errors (no stack overflow)")
    func nesting() {
        func arrays(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        func objects(_ n: Int) -> String {
            String(repeating: #"{"a":"#, count: n) + "1" + String(repeating: "}", count: n)
        }
        #expect(parse(Array(arrays(512).utf8)) != nil)
        #expect(foundationValue(Array(arrays(512).utf8)) != nil)
        #expect(parseError(arrays(513))?.reason == .tooDeep(512))
        #expect(foundationValue(Array(arrays(513).utf8)) == nil)
        #expect(parse(Array(objects(512).utf8)) != nil)
        #expect(parseError(objects(513))?.reason == .tooDeep(512))
        #expect(parseError(String(repeating: "[", count: 100_000))?.reason == .tooDeep(512))
        #expect(parseError(arrays(100_000))?.reason == .tooDeep(512))
        #expect(parseError(objects(100_000))?.reason == .tooDeep(512))
        #expect(parseError(String(repeating: #"[{"a":"#, count: 50_000))?.reason == .tooDeep(512))
        // Through the request decoder: invalid JSON, not a crash.
        let line = #"{"id":3,"op":"order.put","order":"# + objects(100_000) + "}"
        #expect(outcome(line, foundation: false) == "refused invalid_json")
        #expect((try? JSONParser(maximumDepth: 2).parse("[[1]]")) != nil)
        #expect((try? JSONParser(maximumDepth: 2).parse("[[[1]]]")) == nil)
    }

    @Test("3,000 random documents: the same value as the generator, Foundation's JSONDecoder and JSONSerialization")
    func randomDocuments() throws {
        var generator = DocumentGenerator(seed: 0x5EED_0001)
        var failures: [String] = []
        let foundationEncoder = JSONEncoder()
        foundationEncoder.outputFormatting = [.withoutEscapingSlashes]  // as the server had it
        for index in 0..<3000 {
            let (expected, bytes) = generator.document()
            let text = String(decoding: bytes, as: UTF8.self)
            guard let mine = parse(bytes) else {
                failures.append("#\(index) refused: \(text) \(String(describing: parseError(bytes)))")
                continue
            }
            if mine != expected { failures.append("#\(index) parsed \(mine) expected \(expected): \(text)") }
            if normalized(foundationValue(bytes) ?? .string("<refused>")) != normalized(expected) {
                failures.append("#\(index) JSONDecoder reads \(String(describing: foundationValue(bytes))): \(text)")
            }
            if (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) == nil {
                failures.append("#\(index) JSONSerialization refuses \(text)")
            }
            // Our encoder: we and Foundation read it back to the same value.
            let encoded = try JSONBytesEncoder().encode(expected)
            if parse(encoded) != expected { failures.append("#\(index) our encoding reads back differently") }
            if normalized(foundationValue(encoded) ?? .null) != normalized(expected) {
                failures.append(
                    "#\(index) Foundation reads our encoding differently: \(String(decoding: encoded, as: UTF8.self))")
            }
            // Foundation's encoding, read by us; JSONSerialization reads both encodings to the same value
            // (it is not exact by itself: it rounds some doubles and large negative integers, and drops a
            // leading U+FEFF from strings, the same way for both).
            let theirs = Array(try foundationEncoder.encode(expected))
            if serializationValue(encoded) == nil || serializationValue(encoded) != serializationValue(theirs) {
                failures.append(
                    "#\(index) JSONSerialization reads our encoding differently: \(String(decoding: encoded, as: UTF8.self))"
                )
            }
            if parse(theirs).map(normalized) != normalized(expected) {
                failures.append(
                    "#\(index) we read Foundation's encoding differently: \(String(decoding: theirs, as: UTF8.self))")
            }
            if failures.count > 10 { break }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10).joined(separator: "\n"))")
    }

    @Test("every JSON example of docs/protocol.md and every op: same values and same requests as Foundation")
    func protocolCorpus() throws {
        let candidates = try protocolDocCandidates() + requestCorpus + badRequestCorpus
        var valid = 0
        for line in candidates {
            let bytes = Array(line.utf8)
            let mine = parse(bytes)
            let theirs = foundationValue(bytes)
            // A repeated key (the docs show one): refused here, Foundation keeps one of them.
            if mine == nil, isDuplicateKey(bytes) { continue }
            #expect(mine.map(normalized) == theirs.map(normalized), "\(line)")
            if mine != nil { valid += 1 }
        }
        #expect(valid >= 60, "only \(valid) valid JSON lines found")
        for line in requestCorpus {
            let ours = outcome(line, foundation: false)
            #expect(ours == outcome(line, foundation: true), "\(line)")
            #expect(!ours.contains(" error "), "\(ours)")
        }
        for line in badRequestCorpus {
            let ours = outcome(line, foundation: false)
            let theirs = outcome(line, foundation: true)
            #expect(errorCode(ours) == errorCode(theirs), "\(line)")
            // Foundation reports a negative number for an unsigned field without the field path.
            if !line.contains(#""up_to":-1"#) { #expect(comparable(ours) == comparable(theirs), "\(line)") }
            #expect(ours.contains(" error ") || ours.hasPrefix("refused"), "\(ours)")
        }
    }

    @Test("field paths in errors name the op and the field (order.put.order.lines[0].price)")
    func errorPaths() {
        let price = badRequestCorpus.first { $0.contains(#""price":"5000""#) } ?? ""
        #expect(
            outcome(price, foundation: false).hasSuffix(
                "error invalid_field: order.put.order.lines[0].price must be an integer"))
        let missing = badRequestCorpus.first { $0.contains(#""id":19"#) && !$0.contains("price") } ?? ""
        #expect(
            outcome(missing, foundation: false).hasSuffix(
                "error missing_field: order.put.order.lines[0].price is required"))
        let line = #"{"id":16,"op":"refund.create","order_id":"o","method":"original","reason":"x","lines":["l1",2]}"#
        #expect(outcome(line, foundation: false).hasSuffix("error invalid_field: refund.create.lines[1] must be a string"))
        #expect(outcome(#"{"id":6}"#, foundation: false).hasSuffix("error missing_field: op is required"))
    }

    @Test("integers beyond Int64 and non-integers in integer fields are invalid_field, never rounded")
    func integerRange() throws {
        func create(fee: String) -> String {
            #"{"id":14,"op":"refund.create","order_id":"o","method":"original","reason":"x","fee":{"order":\#(fee)}}"#
        }
        for fee in ["99999999999999999999", "9223372036854775808", "-9223372036854775809", "1e19", "1e300"] {
            let result = outcome(create(fee: fee), foundation: false)
            #expect(result.contains("error invalid_field: refund.create.fee.order: number"), "\(fee): \(result)")
        }
        // Only integer literals: a fraction or an exponent is refused even when the value is integral (where
        // Foundation accepts `5e2` and `500.0` as 500).
        for fee in ["1.5", "5e2", "500.0", "-0.5"] {
            let result = outcome(create(fee: fee), foundation: false)
            #expect(
                result.contains("error invalid_field: refund.create.fee.order: must be an integer without a fraction"),
                "\(fee): \(result)")
        }
        for (fee, value) in [("9223372036854775807", Int64.max), ("500", 500), ("-0", 0)] {
            #expect(outcome(create(fee: fee), foundation: false).contains("order(\(value))"), "\(fee)")
        }
        let decoder = JSONValueDecoder()
        #expect(try decoder.decode(Int64.self, from: "-9223372036854775808") == .min)
        #expect(throws: DecodingError.self) { try decoder.decode(Int64.self, from: "-9223372036854775809") }
        #expect(throws: DecodingError.self) { try decoder.decode(Int8.self, from: "128") }
        #expect(try decoder.decode(UInt8.self, from: "255") == 255)
        #expect(throws: DecodingError.self) { try decoder.decode(UInt64.self, from: "-1") }
        #expect(throws: DecodingError.self) { try decoder.decode(Int64.self, from: "1e2") }
        #expect(throws: DecodingError.self) { try decoder.decode(Int.self, from: "100.0") }
        #expect(try decoder.decode(Double.self, from: "9223372036854775808") == 9_223_372_036_854_775_808)
        #expect(try decoder.decode(Float.self, from: "1.5") == 1.5)
        #expect(throws: DecodingError.self) { try decoder.decode(Float.self, from: "1e300") }
    }

    @Test(
        "truncations at every byte and 20,000 random mutations: errors, never a crash; never more lenient than Foundation"
    )
    func hostileInputs() throws {
        var documents = try protocolDocCandidates().map { Array($0.utf8) } + requestCorpus.map { Array($0.utf8) }
        var generator = DocumentGenerator(seed: 0x5EED_0002)
        for _ in 0..<200 { documents.append(generator.document().1) }
        var failures: [String] = []
        func check(_ bytes: [UInt8]) {
            let mine = parse(bytes)
            let theirs = foundationValue(bytes)
            if let mine {
                // Whatever we accept, Foundation accepts, with the same value.
                if !nearlyEqual(theirs.map(normalized), normalized(mine)) {
                    failures.append("accepted, Foundation differs: \(bytes)")
                }
            } else if theirs != nil, !bytes.contains(0), !foundationDetectsUTF16or32(bytes),
                parse(removingTrailingCommas(bytes)) == nil, !isDuplicateKey(bytes)
            {
                failures.append("refused, Foundation accepts: \(String(decoding: bytes, as: UTF8.self))")
            }
            // The whole request path never traps either.
            _ = outcome(String(decoding: bytes, as: UTF8.self), foundation: false)
            _ = try? JSONValueDecoder().decode(Request.self, from: bytes)
        }
        for document in documents {
            for length in 0..<document.count { check(Array(document[..<length])) }
        }
        var rng = SplitMix64(seed: 0x5EED_0003)
        for _ in 0..<20_000 {
            guard var bytes = documents.randomElement(using: &rng), !bytes.isEmpty else { continue }
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0...3, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes[at] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                case 2: bytes.insert(pickStructural(&rng), at: at)
                default: bytes.remove(at: at)
                }
                if bytes.isEmpty { break }
            }
            check(bytes)
            if failures.count > 10 { break }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10).joined(separator: "\n"))")
    }

    @Test("model types round trip: ours → ours, ours → Foundation, Foundation → ours; same JSON as Foundation's")
    func modelRoundTrips() async throws {
        let engine = Engine()
        let staff = Caller.staff("ops_1")
        let order = CodecMeasurement.sampleOrder()
        let placed = try await engine.putOrder(order)
        let options = RefundOptions(
            method: .original, fee: .order(500), reason: "event_cancelled", note: "Sorry \"all\"\n")
        let preview = try await engine.preview(orderID: "ord_1", options, caller: staff)
        let refund = try await engine.createRefund(orderID: "ord_1", options, caller: staff)
        let receipt = try await engine.receipt(refundID: refund.id)
        let view = try await engine.order("ord_1")
        var second = order
        second.id = "ord_2"
        second.event = "evt_2"
        _ = try await engine.putOrder(second)
        let bulk = try await engine.runBulkCancellation(
            BulkCancelRequest(events: ["evt_2"], options: RefundOptions(method: .balance, reason: "event_cancelled")),
            caller: staff)
        let events = await engine.events(after: 0)
        #expect(events.count >= 2)
        let allOptions = RefundOptions(
            lines: ["l1"], method: .balance, fee: .perLine(["l1": 100, "l2": Int64.max]), includeProcessingFees: false,
            includePlatformFees: true, includeBookingFee: true, policy: .full, reason: "r", note: "é😀\u{0}",
            restock: false, notify: false, emailText: "t", idempotencyKey: "k", selfService: true)

        // Request types decode strictly what they encode (an order read back can be put again); response types
        // carry derived fields (a refund's status) that they do not decode, so they are read leniently.
        try roundTrip(order, strict: true)
        try roundTrip(second, strict: true)
        try roundTrip(placed)
        try roundTrip(view)
        try roundTrip(options, strict: true)
        try roundTrip(allOptions, strict: true)
        try roundTrip(RefundOptions(method: .none, fee: .each(1), reason: "x"), strict: true)
        try roundTrip(preview)
        try roundTrip(refund)
        try roundTrip(CodecMeasurement.sampleRefund())
        try roundTrip(receipt)
        try roundTrip(bulk)
        for event in events { try roundTrip(event) }
        try roundTrip(
            Refund(
                id: "rf_1_ord_1", orderID: "ord_1", method: .original, amount: 1, feeRetained: 0, tax: 0, bookingFee: 0,
                reason: "x", note: nil, createdAt: Timestamp(milliseconds: 0), createdBy: "a", restock: true, lines: [],
                transactions: [
                    RefundTransaction(
                        tender: nil, method: .giftCard, amount: .max, status: .failed, attempts: 3,
                        nextAttemptAt: Timestamp(milliseconds: 1), gatewayRef: "g",
                        failures: [
                            FailedAttempt(attempt: 1, at: Timestamp(milliseconds: 2), code: "c", retryable: true)
                        ],
                        settledAt: Timestamp(milliseconds: 3))
                ],
                recovery: Recovery(action: .writtenOff, note: "n", by: "b", at: Timestamp(milliseconds: 4)), jobID: "j",
                requestID: "q", resentAt: [Timestamp(milliseconds: 5)]))

        // Response lines: ours and the Foundation rendering the server had read as the same JSON.
        let dispatcher = Dispatcher(engine: engine, counters: ServerCounters())
        let results: [any Encodable & Sendable] = [
            refund, view, preview, bulk, Dispatcher.ReceiptResult(receipt: receipt),
            Dispatcher.Stats(
                engine: await engine.statistics(),
                server: .init(connections: 1, acceptedConnections: 2, requests: 3, errors: 4), recovery: nil,
                attention: 0, openRequests: 0),
            Dispatcher.Inventory(released: ["tt_ga": 1, "tt_vip": 2]), Dispatcher.EventList(events: events),
            Dispatcher.Empty(),
        ]
        for (index, result) in results.enumerated() {
            for id in [WireID.int(7), .string("a\"b"), .null, .bool(true), .double(2.5)] {
                let ours = Array(dispatcher.success(id: id, result).readableBytesView)
                let theirs = Array(CodecMeasurement.foundationSuccess(id: id, result).readableBytesView)
                #expect(ours.last == UInt8(ascii: "\n"))
                #expect(parse(ours).map(normalized) == parse(theirs).map(normalized), "result \(index)")
                #expect(serializationValue(ours) == serializationValue(theirs), "result \(index)")
                #expect(serializationValue(ours) != nil)
            }
        }
        let receiptLine = Array(
            dispatcher.success(id: .int(1), Dispatcher.ReceiptResult(receipt: receipt)).readableBytesView)
        #expect(parse(receiptLine)?["result"]?["text"] == .string(receipt.text))
        #expect(parse(receiptLine)?["result"]?["refund_id"] == .string(receipt.refundID))
        let failure = Array(
            dispatcher.failure(id: .int(3), RefundError(.orderNotFound, "no order 'x\"'")).readableBytesView)
        #expect(
            String(decoding: failure, as: UTF8.self)
                == #"{"id":3,"ok":false,"error":{"code":"order_not_found","message":"no order 'x\"'"}}"# + "\n")
        let event = try #require(events.first)
        let eventLine = try #require(dispatcher.eventLine(event, encoder: JSONBytesEncoder()))
        #expect(parse(Array(eventLine.readableBytesView))?["event"] == parse(try JSONBytesEncoder().encode(event)))
    }

    func roundTrip<T: Codable & Equatable>(
        _ value: T, strict: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let ours = try JSONBytesEncoder().encode(value)
        let theirs = Array(try JSONEncoder().encode(value))
        let decoder = JSONValueDecoder(rejectsUnknownFields: strict)
        #expect(try decoder.decode(T.self, from: ours) == value, sourceLocation: sourceLocation)
        #expect(try JSONDecoder().decode(T.self, from: Data(ours)) == value, sourceLocation: sourceLocation)
        #expect(try decoder.decode(T.self, from: theirs) == value, sourceLocation: sourceLocation)
        #expect(serializationValue(ours) != nil, sourceLocation: sourceLocation)
        #expect(serializationValue(ours) == serializationValue(theirs), sourceLocation: sourceLocation)
        #expect(parse(ours) == parse(theirs), sourceLocation: sourceLocation)
    }

    @Test("encoder: escapes, numbers, nil, empty values, merged containers, misuse is an error")
    func encoder() throws {
        let encoder = JSONBytesEncoder()
        func text<T: Encodable>(_ value: T) throws -> String {
            String(decoding: try encoder.encode(value), as: UTF8.self)
        }
        #expect(try text("a\"\\/\u{0}\u{1F}\u{8}\u{C}\n\r\t\u{7F}é😀") == #""a\"\\/\u0000\u001f\b\f\n\r\t\#u{7F}é😀""#)
        #expect(
            try text([Int64.min, -1, 0, 9, 10, Int64.max]) == "[-9223372036854775808,-1,0,9,10,9223372036854775807]")
        #expect(try text([UInt64.max]) == "[18446744073709551615]")
        #expect(try text([1.0, 0.1, 1e20, -0.0, Double.leastNonzeroMagnitude]) == "[1,0.1,1e+20,-0,5e-324]")
        #expect(try text([Float(0.1)]) == "[0.1]")
        #expect(try text([true, false]) == "[true,false]")
        #expect(try text([String?.none, "x"]) == #"[null,"x"]"#)
        #expect(try text(["k": [Int8(-8)]]) == #"{"k":[-8]}"#)
        #expect(try text([[String: Int]]()) == "[]")
        #expect(try text([[String: Int]()]) == "[{}]")
        #expect(throws: EncodingError.self) { try encoder.encode([Double.nan]) }
        #expect(throws: EncodingError.self) { try encoder.encode(["a": Double.infinity]) }
        #expect(throws: EncodingError.self) { try encoder.encode(Nothing()) }
        #expect(try text([Nothing()]) == "[{}]")
        #expect(try text(Optionals(a: nil, b: 1)) == #"{"b":1,"c":null}"#)
        #expect(try text(Merged()) == #"{"a":1,"b":2}"#)
        #expect(try text(Nested()) == #"{"x":{"y":[1,[2],{"z":3}]},"w":4}"#)
        #expect(try text(Super(writes: false)) == #"{"super":{},"k":{}}"#)
        #expect(try text(Super(writes: true)) == #"{"super":5,"k":"v"}"#)
        #expect(throws: EncodingError.self) { try encoder.encode(Interleaved()) }
        // On error the output is left as it was.
        var bytes = Array("prefix".utf8)
        #expect(throws: EncodingError.self) { try encoder.encode([1.0, .nan], into: &bytes) }
        #expect(bytes == Array("prefix".utf8))
        // Coding paths in encoding errors, as Foundation's.
        do {
            _ = try encoder.encode(["a": [1.0, .nan]])
        } catch let EncodingError.invalidValue(_, context) {
            #expect(RefundError.path(context.codingPath) == "a[1]")
        }
        // JSONValue encodes and decodes as itself.
        let value = try JSONParser().parse(#"{"a":[1,2.5,"x",null,true,{"b":{}}]}"#)
        #expect(try JSONValueDecoder().decode(JSONValue.self, from: try encoder.encode(value)) == value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(try encoder.encode(value))) == value)
    }

    @Test("decoder: containers, nil handling, large objects, superDecoder, Foundation's error cases")
    func decoder() throws {
        // Foundation's semantics, unknown members ignored (the strict default: StrictRequestTests).
        let decoder = JSONValueDecoder(rejectsUnknownFields: false)
        #expect(try decoder.decode([String: Int64].self, from: #"{"a":1,"b":-2}"#) == ["a": 1, "b": -2])
        #expect(try decoder.decode([Int?].self, from: "[1,null,3]") == [1, nil, 3])
        #expect(try decoder.decode(Optionals.self, from: #"{"a":null}"#) == Optionals(a: nil, b: nil))
        #expect(try decoder.decode(Optionals.self, from: #"{"b":2,"c":null}"#) == Optionals(a: nil, b: 2))
        // A big map decodes in linear time (hash index for objects with many members).
        let many = "{" + (0..<50_000).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + "}"
        let map = try decoder.decode([String: Int].self, from: many)
        #expect(map.count == 50_000 && map["k49999"] == 49_999)
        #expect(try decoder.decode(Nested.self, from: #"{"x":{"y":[1,[2],{"z":3}]},"w":4}"#) == Nested())
        #expect(try decoder.decode(Super.self, from: #"{"super":5,"k":"v"}"#) == Super(writes: true))
        #expect(try decoder.decode(Super.self, from: #"{"k":"v"}"#) == Super(writes: false))
        // Foundation's error cases and coding paths.
        func error<T: Decodable>(_ type: T.Type, _ text: String) -> DecodingError? {
            do {
                _ = try decoder.decode(type, from: text)
                return nil
            } catch {
                return error as? DecodingError
            }
        }
        func foundationError<T: Decodable>(_ type: T.Type, _ text: String) -> DecodingError? {
            do {
                _ = try JSONDecoder().decode(type, from: Data(text.utf8))
                return nil
            } catch {
                return error as? DecodingError
            }
        }
        func summary(_ e: DecodingError?) -> String {
            switch e {
            case .keyNotFound(let key, let c)?: "keyNotFound \(key.stringValue) \(RefundError.path(c.codingPath))"
            case .typeMismatch(let t, let c)?: "typeMismatch \(t) \(RefundError.path(c.codingPath))"
            case .valueNotFound(let t, let c)?: "valueNotFound \(t) \(RefundError.path(c.codingPath))"
            case .dataCorrupted(let c)?: "dataCorrupted \(RefundError.path(c.codingPath))"
            default: "none"
            }
        }
        let cases: [(String, String)] = [
            (#"{"y":[1]}"#, "Nested"), (#"{"x":{"y":[1,[2],{"z":"3"}]},"w":4}"#, "Nested"),
            (#"{"x":{"y":[1,[2]]},"w":4}"#, "Nested"), (#"{"x":{"y":[1,null,{"z":3}]},"w":4}"#, "Nested"),
            (#"{"x":[],"w":4}"#, "Nested"), (#"{"x":null,"w":4}"#, "Nested"), (#"{"x":{"y":{}},"w":4}"#, "Nested"),
            (#"{"x":{"y":[true,[2],{"z":3}]},"w":4}"#, "Nested"), (#"[1,"2"]"#, "[Int]"), (#"[1,null]"#, "[Int]"),
            (#"{"a":1}"#, "Optionals"), (#"{"b":true}"#, "Optionals"), ("7", "[Int]"), ("null", "Nested"),
        ]
        for (text, type) in cases {
            let (ours, theirs) =
                type == "Nested"
                ? (error(Nested.self, text), foundationError(Nested.self, text))
                : type == "[Int]"
                    ? (error([Int].self, text), foundationError([Int].self, text))
                    : (error(Optionals.self, text), foundationError(Optionals.self, text))
            #expect(ours != nil, "\(text)")
            #expect(summary(ours) == summary(theirs), "\(text)")
        }
        #expect(summary(error(Nested.self, "[1,")) == "dataCorrupted the request")
    }
}

/// Equal, except that a Double beyond 2^53 may differ in its last place: Foundation reads a literal with a
/// fraction there (`-25116413564795858.4`) as a truncated integer, which then rounds to a Double a second time.
func nearlyEqual(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
    switch (a, b) {
    case (.double(let x)?, .double(let y)?):
        return x == y || (abs(x) > 9_007_199_254_740_992 && abs(x - y) <= x.ulp)
    case (.array(let x)?, .array(let y)?):
        return x.count == y.count && zip(x, y).allSatisfy { nearlyEqual($0, $1) }
    case (.object(let x)?, .object(let y)?):
        return x.count == y.count && x.allSatisfy { member in nearlyEqual(member.value, b?[member.key]) }
    default:
        return a == b
    }
}

/// Whether the parser refuses `bytes` for a repeated key (which Foundation's JSONDecoder accepts).
func isDuplicateKey(_ bytes: [UInt8]) -> Bool {
    if case .duplicateKey? = parseError(bytes)?.reason { return true }
    return false
}

/// Foundation's JSONDecoder reads UTF-16 and UTF-32 input (detected from a byte order mark or zero bytes); the
/// protocol is UTF-8 only, so that leniency is not copied.
func foundationDetectsUTF16or32(_ bytes: [UInt8]) -> Bool {
    bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE]) || bytes.prefix(4).contains(0)
}

/// `bytes` without the commas before a `]` or `}` (outside strings): Foundation's JSONDecoder accepts those.
func removingTrailingCommas(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var inString = false
    var escaped = false
    var pendingComma: [UInt8]? = nil
    for b in bytes {
        if inString {
            out.append(b)
            if escaped {
                escaped = false
            } else if b == UInt8(ascii: "\\") {
                escaped = true
            } else if b == UInt8(ascii: "\"") {
                inString = false
            }
            continue
        }
        if var pending = pendingComma {
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D {
                pending.append(b)
                pendingComma = pending
                continue
            }
            pendingComma = nil
            if b == UInt8(ascii: "]") || b == UInt8(ascii: "}") {
                out.append(contentsOf: pending.dropFirst())
            } else {
                out.append(contentsOf: pending)
            }
        }
        if b == UInt8(ascii: ",") {
            pendingComma = [b]
            continue
        }
        if b == UInt8(ascii: "\"") { inString = true }
        out.append(b)
    }
    out.append(contentsOf: pendingComma ?? [])
    return out
}

/// A request outcome with error messages cut to the field path (`up_to: number -1 ...` → `up_to`): the two
/// decoders word number errors differently.
func comparable(_ outcome: String) -> String {
    guard let range = outcome.range(of: " error ") else { return outcome }
    let message = outcome[range.upperBound...]
    guard let colon = message.dropFirst().firstIndex(of: ":"),
        let next = message[colon...].dropFirst().firstIndex(of: ":")
    else {
        return outcome
    }
    return String(outcome[..<next])
}

/// The outcome up to its error code.
func errorCode(_ outcome: String) -> String {
    guard let range = outcome.range(of: " error ") else { return outcome }
    return String(outcome[..<range.upperBound]) + (outcome[range.upperBound...].split(separator: ":").first ?? "")
}

func pickStructural(_ rng: inout SplitMix64) -> UInt8 {
    let bytes = Array(#"{}[]:,"\ 0-.eE\#u{0}"#.utf8) + [0x80, 0xC3, 0xED, 0xF0]
    return bytes[Int.random(in: 0..<bytes.count, using: &rng)]
}

// MARK: Test types

/// Encodes nothing at all.
struct Nothing: Encodable {
    func encode(to encoder: any Encoder) throws {}
}

struct Optionals: Codable, Equatable {
    var a: String?
    var b: Int?
    enum CodingKeys: String, CodingKey { case a, b, c }
    init(a: String?, b: Int?) {
        self.a = a
        self.b = b
    }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        a = try c.decodeIfPresent(String.self, forKey: .a)
        b = try c.decodeIfPresent(Int.self, forKey: .b)
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(a, forKey: .a)
        try c.encodeIfPresent(b, forKey: .b)
        try c.encodeNil(forKey: .c)
    }
}

/// Asks for the keyed container twice (as `Stats` and `ReceiptResult` do): one object.
struct Merged: Encodable {
    struct Inner: Encodable { var a = 1 }
    func encode(to encoder: any Encoder) throws {
        try Inner().encode(to: encoder)
        var c = encoder.container(keyedBy: JSONValue.MemberKey.self)
        try c.encode(2, forKey: .init(stringValue: "b"))
    }
}

/// Nested keyed and unkeyed containers, used one after the other.
struct Nested: Codable, Equatable {
    enum Keys: String, CodingKey { case x, y, z, w }
    init() {}
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        var x = c.nestedContainer(keyedBy: Keys.self, forKey: .x)
        var y = x.nestedUnkeyedContainer(forKey: .y)
        try y.encode(1)
        var inner = y.nestedUnkeyedContainer()
        try inner.encode(2)
        var z = y.nestedContainer(keyedBy: Keys.self)
        try z.encode(3, forKey: .z)
        try c.encode(4, forKey: .w)
    }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let x = try c.nestedContainer(keyedBy: Keys.self, forKey: .x)
        var y = try x.nestedUnkeyedContainer(forKey: .y)
        guard try y.decode(Int.self) == 1 else { throw TestFailure("y[0]") }
        var inner = try y.nestedUnkeyedContainer()
        guard try inner.decode(Int.self) == 2, inner.isAtEnd else { throw TestFailure("y[1]") }
        let z = try y.nestedContainer(keyedBy: Keys.self)
        guard try z.decode(Int.self, forKey: .z) == 3, y.isAtEnd else { throw TestFailure("z") }
        _ = try c.decode(Int.self, forKey: .w)
    }
}

/// `superEncoder()` / `superDecoder()`, with and without a value.
struct Super: Codable, Equatable {
    var writes: Bool
    enum Keys: String, CodingKey { case k }
    init(writes: Bool) { self.writes = writes }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        let sup = c.superEncoder()
        if writes {
            var s = sup.singleValueContainer()
            try s.encode(5)
        }
        let k = c.superEncoder(forKey: .k)
        if writes {
            var s = k.singleValueContainer()
            try s.encode("v")
        }
    }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let sup = try c.superDecoder().singleValueContainer()
        writes = !sup.decodeNil()
        if writes { _ = try sup.decode(Int.self) }
    }
}

/// Writes to a container after a later sibling was started: an error, not wrong JSON.
struct Interleaved: Encodable {
    enum Keys: String, CodingKey { case a, b }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        var a = c.nestedUnkeyedContainer(forKey: .a)
        var b = c.nestedUnkeyedContainer(forKey: .b)
        try b.encode(1)
        try a.encode(2)
    }
}
