import RefundCore
import Testing

@testable import RefundServer

// The direct order reader (DirectOrderDecoding) against the strict Decodable path (Order.init(from:) through
// JSONValueDecoder): on well-formed orders it reads the same order; on thousands of mutated ones (a key dropped,
// an unknown key, a value of another JSON type, a fraction or exponent where an integer is due, null, an unknown
// enum value, currency or timestamp, inside lines and tenders too) it never accepts what the strict path refuses,
// and whatever it accepts is exactly what the strict path reads. A failure prints the seed.

@Suite struct DirectOrderDecodingTests {
    static func order(_ random: inout SplitMix64, id: Int) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("id", .string("ord_\(id)")), ("event", .string("evt_1")), ("currency", .string(["GBP", "JPY", "EUR"][id % 3])),
        ]
        let optional: [(String, JSONValue)] = [
            ("event_starts_at", .string("2030-12-01T19:00:00Z")), ("customer", .string("cus_1")),
            ("email", .string("a@example.com")), ("channel", .string("box_office")), ("source", .string("comp")),
            ("parent", .string("ord_0")), ("frozen", .bool(true)), ("sync_pending", .bool(false)),
            ("booking_fee", .int(150)),
        ]
        for member in optional where Bool.random(using: &random) { members.append((member.0, member.1)) }
        var lines: [JSONValue] = []
        for n in 0..<Int.random(in: 1...4, using: &random) {
            var line: [(key: String, value: JSONValue)] = [("id", .string("l\(n)")), ("price", .int(Int64.random(in: 0...9000, using: &random)))]
            let extras: [(String, JSONValue)] = [
                ("kind", .string("product")), ("ticket_type", .string("tt_ga")), ("discount", .int(10)), ("tax", .int(5)),
                ("processing_fee", .int(3)), ("platform_fee", .int(2)), ("transferred", .bool(true)), ("claimed", .bool(false)),
                ("holder", .string("att_1")),
            ]
            for extra in extras where Bool.random(using: &random) { line.append((extra.0, extra.1)) }
            line.shuffle(using: &random)
            lines.append(.object(line))
        }
        members.append(("lines", .array(lines)))
        if Bool.random(using: &random) {
            var tenders: [JSONValue] = [.object([("id", .string("t1")), ("method", .string("card")), ("amount", .int(100)), ("gateway_ref", .string("pi_1"))])]
            if Bool.random(using: &random) { tenders.append(.object([("id", .string("t2")), ("method", .string("wallet")), ("amount", .int(50))])) }
            members.append(("tenders", .array(tenders)))
        }
        members.shuffle(using: &random)
        return .object(members)
    }

    /// Replacement values of every JSON type, the awkward ones included.
    static let replacements: [JSONValue] = [
        .null, .bool(true), .int(7), .int(-1), .double(100.0), .double(1e2), .double(2.5), .string("x"), .string(""),
        .string("GBP"), .string("gbp"), .string("2030-13-01T00:00:00Z"), .string("ticket"), .string("tshirt"),
        .array([]), .object([]), .int(Int64.max),
    ]

    /// One random change somewhere in the value (an object's member, an array's element, recursively).
    static func mutate(_ value: JSONValue, _ random: inout SplitMix64, depth: Int = 0) -> JSONValue {
        switch value {
        case .object(var members) where !members.isEmpty:
            let i = Int.random(in: 0..<members.count, using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0: members.remove(at: i)
            case 1: members.append((["prcie", "lines2", "Id", "amount_", "extra"].randomElement(using: &random) ?? "x", .int(1)))
            case 2 where depth < 3, 3 where depth < 3:
                members[i].value = mutate(members[i].value, &random, depth: depth + 1)
            default: members[i].value = replacements.randomElement(using: &random) ?? .null
            }
            return .object(members)
        case .array(var elements) where !elements.isEmpty:
            let i = Int.random(in: 0..<elements.count, using: &random)
            if Bool.random(using: &random) {
                elements[i] = mutate(elements[i], &random, depth: depth + 1)
            } else {
                elements[i] = replacements.randomElement(using: &random) ?? .null
            }
            return .array(elements)
        default:
            return replacements.randomElement(using: &random) ?? .null
        }
    }

    @Test func wellFormedOrdersReadTheSame() throws {
        var random = SplitMix64(seed: 1)
        for n in 0..<500 {
            let value = Self.order(&random, id: n)
            let strict = try JSONValueDecoder().decode(Order.self, from: value)
            let direct = try #require(DirectOrderDecoding.order(value), "order \(n) should be read directly")
            #expect(direct == strict)
            #expect(direct.eventStartsAt == strict.eventStartsAt && direct.parent == strict.parent)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func neverLaxerThanTheStrictPath(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var refusedByBoth = 0
        for n in 0..<3000 {
            var value = Self.order(&random, id: n)
            for _ in 0..<Int.random(in: 1...2, using: &random) { value = Self.mutate(value, &random) }
            let strict = try? JSONValueDecoder().decode(Order.self, from: value)
            guard let direct = DirectOrderDecoding.order(value) else {
                if strict == nil { refusedByBoth += 1 }
                continue
            }
            #expect(strict != nil, "the direct reader accepted what the strict path refuses, seed \(seed), case \(n): \(value)")
            #expect(strict == direct, "seed \(seed), case \(n)")
        }
        #expect(refusedByBoth > 500, "the mutations should produce many bad orders (seed \(seed))")
    }
}
