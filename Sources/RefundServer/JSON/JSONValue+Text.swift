/// Reading and writing `JSONValue` by hand: what a client (refundctl) needs to build requests and read answers.
/// Members keep their order, so requests and printed answers read as written.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue {
    /// An object of these members, in this order (members built as unlabeled pairs).
    public static func object(_ members: [(String, JSONValue)]) -> JSONValue {
        var labeled: [(key: String, value: JSONValue)] = []
        labeled.reserveCapacity(members.count)
        for (key, value) in members { labeled.append((key: key, value: value)) }
        // The typed array picks the enum case (an exact match), never this function again.
        return JSONValue.object(labeled)
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    /// An integer, or a double that holds a whole number within Int64.
    public var int: Int64? {
        switch self {
        case .int(let v): v
        case .double(let d) where d.rounded() == d && abs(d) < 9e18: Int64(d)
        default: nil
        }
    }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var members: [(key: String, value: JSONValue)]? { if case .object(let m) = self { m } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// Compact JSON text (strings escaped as ``JSONBytesEncoder`` escapes them).
    public var serialized: String {
        var bytes: [UInt8] = []
        write(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the compact JSON text of this value.
    public func write(to bytes: inout [UInt8]) {
        switch self {
        case .null: bytes += "null".utf8
        case .bool(let b): bytes += (b ? "true" : "false").utf8
        case .int(let v): JSONText.appendInteger(v, to: &bytes)
        case .double(let d): bytes += (d.isFinite ? "\(d)" : "null").utf8
        case .string(let s): JSONText.appendString(s, to: &bytes)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                item.write(to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONText.appendString(member.key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                member.value.write(to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Pretty JSON text (two-space indent), members in their order.
    public func pretty(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .array(let items) where !items.isEmpty:
            return "[\n" + items.map { inner + $0.pretty(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members) where !members.isEmpty:
            return "{\n"
                + members.map { inner + JSONValue.string($0.key).serialized + ": " + $0.value.pretty(indent: inner) }
                .joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return serialized
        }
    }
}
