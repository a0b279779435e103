/// Decodes `Decodable` types from a parsed ``JSONValue`` (or straight from UTF-8 bytes), with the semantics of
/// Foundation's `JSONDecoder` in its default configuration (the same `DecodingError` cases with the same coding
/// paths, so the protocol's error mapping names the field, e.g. `order.lines[0].price`; `decodeIfPresent`
/// returning nil for a missing key or `null`), and stricter in three ways, because a request that is misread acts
/// for real:
///
/// - **Unknown fields** (``rejectsUnknownFields``, on by default): every member of every object must be read by
///   the type decoding it, or decoding fails with ``JSONUnknownFieldError`` (a `DecodingError.dataCorrupted`
///   at the member's path). Reading means `decode`, `decodeIfPresent`, `decodeNil`, a nested container or super
///   decoder for the key, or decoding the object as a ``JSONValue``; `contains` and `allKeys` do not count. (The
///   protocol's `Request` checks its own root, against its op, so that the error keeps the request's id.)
/// - **Integers**: an integer type accepts only an integer literal in its range. A number with a fraction or an
///   exponent (`100.0`, `1e2`, `-0.5`) is an error, as is an integer literal beyond `Int64` (which the parser can
///   only hold as a rounded Double): a `DecodingError.dataCorrupted` at that field, never rounded. `UInt64`
///   values above `Int64.max` are therefore refused too (no field of the protocol gets near them).
/// - **Enumerations**: a `RawRepresentable & CaseIterable` type given a value it has no case for fails with a
///   message that lists the allowed values (`'tshirt' is not one of ticket, product, …`).
///
/// (Duplicate keys never get here: ``JSONParser`` refuses them.)
public struct JSONValueDecoder: Sendable {
    public var parser: JSONParser
    /// Refuse object members that the decoded type does not read (default true).
    public var rejectsUnknownFields: Bool

    public init(parser: JSONParser = JSONParser(), rejectsUnknownFields: Bool = true) {
        self.parser = parser
        self.rejectsUnknownFields = rejectsUnknownFields
    }

    /// Decodes `type` from an already parsed value.
    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        let root = JSONValueDecoderImpl(value: value, parent: nil, key: nil, rejectsUnknownFields: rejectsUnknownFields)
        let result = try root.decodeValue(T.self)
        try root.checkFieldsRead(T.self)
        return result
    }

    /// Parses `bytes` and decodes `type`. A parse failure is `DecodingError.dataCorrupted` with an empty coding
    /// path and the ``JSONParseError`` as its underlying error (as Foundation reports invalid JSON).
    public func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        let value: JSONValue
        do {
            value = try parser.parse(bytes)
        } catch {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: [], debugDescription: "The given data was not valid JSON: \(error)",
                    underlyingError: error))
        }
        return try decode(type, from: value)
    }

    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try bytes.withUnsafeBytes { try decode(type, from: $0) }
    }

    public func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try decode(type, from: Array(text.utf8))
    }
}

/// The underlying error of the `DecodingError.dataCorrupted` thrown for an object member that the decoded type
/// does not read. The error's coding path ends with the member's key.
public struct JSONUnknownFieldError: Error, Sendable, Equatable {
    /// The member's key (cut to 64 characters).
    public var key: String
    /// What the object is, for messages: `an order line`, or the op name for a request (see
    /// ``JSONDescribedObject``).
    public var object: String
}

/// The underlying error of the `DecodingError.dataCorrupted` thrown for a value that is no case of a
/// `RawRepresentable & CaseIterable` type.
public struct JSONInvalidEnumValueError: Error, Sendable, Equatable {
    /// The value as the client wrote it (a string quoted, cut to 64 characters).
    public var value: String
    /// Every allowed value, in declaration order.
    public var allowed: [String]
}

/// A type that names its objects in "is not a field of …" messages (`an order line`); other types are named by
/// their Swift type name.
package protocol JSONDescribedObject {
    static var jsonObjectDescription: String { get }
}

extension Optional: JSONDescribedObject where Wrapped: JSONDescribedObject {
    package static var jsonObjectDescription: String { Wrapped.jsonObjectDescription }
}

/// Allowed values of a type whose cases the decoder cannot list by itself (not `CaseIterable`).
package protocol JSONEnumeratedValues {
    static var jsonAllowedValues: [String] { get }
}

extension JSONValueDecoder {
    /// The parsed value `decoder` decodes, when it is one of this decoder's (the server reads a request's `id`
    /// from it before anything else); nil for any other Decoder.
    package static func value(of decoder: any Decoder) -> JSONValue? { (decoder as? JSONValueDecoderImpl)?.value }

    /// Counts every member of `decoder`'s object as read: its caller checks them itself.
    package static func markAllRead(_ decoder: any Decoder) { (decoder as? JSONValueDecoderImpl)?.markAllRead() }

    /// Throws `JSONUnknownFieldError` for a member of `decoder`'s object that was not read (described as
    /// `description` in the message); nothing for any other Decoder.
    package static func checkFieldsRead(_ decoder: any Decoder, describedAs description: String) throws {
        try (decoder as? JSONValueDecoderImpl)?.checkFieldsRead(describedAs: description)
    }
}

/// A key of an object member by its name (for coding paths the decoder builds itself).
package struct JSONMemberKey: CodingKey {
    package var stringValue: String
    package var intValue: Int? { nil }
    package init(_ name: String) { self.stringValue = name }
    package init(stringValue: String) { self.stringValue = stringValue }
    package init?(intValue: Int) { return nil }
}

/// `value` as an Int64 when it is an integral Double small enough to be exact (at most 2^53 in magnitude): how
/// Foundation reads `1.0` as an integer. Only for values that are not fields (a request's `id`).
package func exactInteger(_ value: Double) -> Int64? {
    guard value == value.rounded(.towardZero), abs(value) <= exactDoubleIntegerLimit else { return nil }
    return Int64(exactly: value)
}

/// An array index in a coding path (`[3]` in the server's messages), as Foundation's.
struct JSONIndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { self.intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
}

/// The `super` key of `superDecoder()` / `superEncoder()`.
struct JSONSuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }
    init() {}
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { return nil }
}

/// One value being decoded. A child is created per nested non-scalar value; the coding path is the chain of keys
/// up to the root, built only when it is asked for (errors).
///
/// For an object value it also records which members were read (one bit per member), so that
/// ``checkFieldsRead(_:)`` can refuse the members nobody read: a cheap check per object, no key set is built.
final class JSONValueDecoderImpl: Decoder, SingleValueDecodingContainer {
    let value: JSONValue
    let parent: JSONValueDecoderImpl?
    let key: (any CodingKey)?
    let rejectsUnknownFields: Bool
    // Written only by the one decode running on this tree (no overlapping accesses): unchecked exclusivity keeps
    // the per-member bookkeeping to a few instructions.
    /// Bit n: member n of the object was read (members 0–63).
    @exclusivity(unchecked) private var readMask: UInt64 = 0
    /// The object's member count once a keyed container was opened on it; -1 before.
    @exclusivity(unchecked) private var memberCount = -1
    /// Every member counts as read: the value was taken whole (as a ``JSONValue``), or its check is done.
    @exclusivity(unchecked) private var allRead = false
    /// Members 64 and beyond: read or not (only for such large objects).
    private var readBeyond: [Bool]?
    /// Decoders handed out as nested containers or super decoders: their objects are checked with this one's.
    private var containerChildren: [JSONValueDecoderImpl]?

    init(value: JSONValue, parent: JSONValueDecoderImpl?, key: (any CodingKey)?, rejectsUnknownFields: Bool) {
        self.value = value
        self.parent = parent
        self.key = key
        self.rejectsUnknownFields = rejectsUnknownFields
    }

    var codingPath: [any CodingKey] {
        var keys: [any CodingKey] = []
        var node: JSONValueDecoderImpl? = self
        while let current = node, let key = current.key {
            keys.append(key)
            node = current.parent
        }
        return keys.reversed()
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func child(_ value: JSONValue, key: any CodingKey) -> JSONValueDecoderImpl {
        JSONValueDecoderImpl(value: value, parent: self, key: key, rejectsUnknownFields: rejectsUnknownFields)
    }

    /// A child that the caller decodes through containers of its own (nested containers, super decoders): no
    /// `init(from:)` ends for it, so its members are checked when this decoder's are.
    func containerChild(_ value: JSONValue, key: any CodingKey) -> JSONValueDecoderImpl {
        let child = child(value, key: key)
        if rejectsUnknownFields { containerChildren = (containerChildren ?? []) + [child] }
        return child
    }

    // MARK: Unknown fields

    /// Records that member `offset` of this decoder's object was read.
    @inline(__always) func markRead(_ offset: Int) {
        if offset < 64 {
            readMask |= 1 &<< UInt64(truncatingIfNeeded: offset)
        } else {
            markReadBeyond(offset)
        }
    }

    private func markReadBeyond(_ offset: Int) {
        guard case .object(let members) = value, offset < members.count else { return }
        var beyond = readBeyond ?? Array(repeating: false, count: members.count - 64)
        readBeyond = nil
        beyond[offset - 64] = true
        readBeyond = beyond
    }

    /// Accepts every member as read: the value was taken whole, or its owner has answered for it.
    func markAllRead() { allRead = true }

    private func isRead(_ offset: Int) -> Bool {
        if offset < 64 { return readMask & (1 &<< UInt64(truncatingIfNeeded: offset)) != 0 }
        let index = offset - 64
        guard let readBeyond, index < readBeyond.count else { return false }
        return readBeyond[index]
    }

    /// Throws ``JSONUnknownFieldError`` (in a `DecodingError.dataCorrupted`) for the first member of this
    /// decoder's object that was not read, and then checks the decoders handed out as containers. `T` is the type
    /// that decoded the object (it names the object in the message).
    func checkFieldsRead<T>(_ type: T.Type) throws {
        try checkFieldsRead(describedAs: JSONValueDecoderImpl.describe(T.self))
    }

    /// The same, with the object's description given (`refund.create` for a request line).
    func checkFieldsRead(describedAs description: @autoclosure () -> String) throws {
        guard rejectsUnknownFields, !allRead else { return }
        let complete: Bool
        switch memberCount {
        case 0..<64: complete = readMask == (1 &<< UInt64(truncatingIfNeeded: memberCount)) &- 1
        case 64...: complete = readMask == .max && readBeyond?.contains(false) == false
        default:
            // No keyed container was opened: complete unless this is an object with members.
            if case .object(let members) = value { complete = members.isEmpty } else { complete = true }
        }
        if !complete, case .object(let members) = value {
            for offset in members.indices where !isRead(offset) {
                throw unknownField(members[offset].key, object: description())
            }
        }
        for child in containerChildren ?? [] {
            try child.checkFieldsRead(describedAs: child.pathDescription)
        }
    }

    private func unknownField(_ key: String, object: String) -> DecodingError {
        let shown = key.count > 64 ? key.prefix(64) + "…" : key
        return .dataCorrupted(
            .init(
                codingPath: codingPath + [JSONMemberKey(shown)], debugDescription: "is not a field of \(object)",
                underlyingError: JSONUnknownFieldError(key: shown, object: object)))
    }

    /// This decoder's coding path as text (`order.lines[0]`), for messages.
    var pathDescription: String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                if !out.isEmpty { out += "." }
                out += key.stringValue
            }
        }
        return out.isEmpty ? "the document" : out
    }

    static func describe<T>(_ type: T.Type) -> String {
        if let described = T.self as? any JSONDescribedObject.Type { return described.jsonObjectDescription }
        return "\(T.self)"
    }

    // MARK: Enumerations

    /// `T(from: self)`. A value that is no case of an enumeration is reported with the allowed values.
    @inline(__always) func decodeObject<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try T(from: self)
        } catch let DecodingError.dataCorrupted(context) where context.underlyingError == nil {
            throw enumerationError(T.self, context) ?? DecodingError.dataCorrupted(context)
        }
    }

    /// The error for `value` when `T` is an enumeration that refused it at this decoder's path; nil otherwise.
    private func enumerationError<T>(_ type: T.Type, _ context: DecodingError.Context) -> DecodingError? {
        let allowed: [String]
        if let listed = T.self as? any JSONEnumeratedValues.Type {
            allowed = listed.jsonAllowedValues
        } else if let iterable = T.self as? any CaseIterable.Type {
            allowed = rawValues(of: iterable)
        } else {
            return nil
        }
        guard context.codingPath.count == codingPath.count, !allowed.isEmpty else { return nil }
        let shown: String
        switch value {
        case .string(let s): shown = "'" + (s.count > 64 ? s.prefix(64) + "…" : s) + "'"
        case .int(let i): shown = String(i)
        default: return nil
        }
        return .dataCorrupted(
            .init(
                codingPath: context.codingPath,
                debugDescription: "\(shown) is not one of \(allowed.joined(separator: ", "))",
                underlyingError: JSONInvalidEnumValueError(value: shown, allowed: allowed)))
    }

    // MARK: Containers

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch value {
        case .object(let members):
            memberCount = members.count
            return KeyedDecodingContainer(JSONKeyedDecodingContainer<Key>(decoder: self, members: members))
        case .null:
            throw DecodingError.valueNotFound(
                [String: Any].self,
                .init(
                    codingPath: codingPath,
                    debugDescription: "Cannot get keyed decoding container -- found null value instead"))
        default:
            throw DecodingError.typeMismatch(
                [String: Any].self,
                .init(
                    codingPath: codingPath,
                    debugDescription:
                        "Expected to decode Dictionary<String, Any> but found \(value.kindDescription) instead."))
        }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let elements):
            return JSONUnkeyedDecodingContainer(decoder: self, elements: elements)
        case .null:
            throw DecodingError.valueNotFound(
                [Any].self,
                .init(
                    codingPath: codingPath,
                    debugDescription: "Cannot get unkeyed decoding container -- found null value instead"))
        default:
            throw DecodingError.typeMismatch(
                [Any].self,
                .init(
                    codingPath: codingPath,
                    debugDescription: "Expected to decode Array<Any> but found \(value.kindDescription) instead."))
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    // MARK: Decoding a value

    /// Decodes this decoder's value as `T`: scalars directly, everything else through `T.init(from:)`. (No
    /// unknown-field check: this is the root, or a type decoding its own value again through a single value
    /// container; whoever created this decoder checks it.)
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == JSONValue.self { markAllRead() }
        return try decodeScalar(T.self, value, { self.codingPath }, orElse: { try decodeObject(T.self) })
    }

    /// Decodes a member or element `value` (at `key` under this decoder) as `T`, and refuses the members of its
    /// object that `T` did not read.
    func decodeChild<T: Decodable>(_ type: T.Type, _ value: JSONValue, key: any CodingKey) throws -> T {
        try decodeScalar(
            T.self, value, { self.codingPath + [key] },
            orElse: {
                let child = child(value, key: key)
                let result = try child.decodeObject(T.self)
                try child.checkFieldsRead(T.self)
                return result
            })
    }

    // MARK: SingleValueDecodingContainer

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool { try scalar() }
    func decode(_ type: String.Type) throws -> String { try scalar() }
    func decode(_ type: Double.Type) throws -> Double { try scalar() }
    func decode(_ type: Float.Type) throws -> Float { try scalar() }
    func decode(_ type: Int.Type) throws -> Int { try scalar() }
    func decode(_ type: Int8.Type) throws -> Int8 { try scalar() }
    func decode(_ type: Int16.Type) throws -> Int16 { try scalar() }
    func decode(_ type: Int32.Type) throws -> Int32 { try scalar() }
    func decode(_ type: Int64.Type) throws -> Int64 { try scalar() }
    func decode(_ type: UInt.Type) throws -> UInt { try scalar() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try scalar() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try scalar() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try scalar() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try scalar() }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(T.self) }

    private func scalar<T: JSONScalar>() throws -> T { try T.unwrap(value, { self.codingPath }) }
}

/// The common scalar types are read without creating a child decoder; any other `T` comes from `orElse`.
///
/// `unsafeBitCast` converts only after `T.self == X.self` proved T is X (same type, same layout). Neither
/// `as? T` nor a `T?` result is used: in this unspecialized generic code each would look up `Optional<T>`'s
/// metadata at run time on every call (measured: the largest single cost of decoding before this).
@inline(__always)
private func decodeScalar<T>(
    _ type: T.Type, _ value: JSONValue, _ path: () -> [any CodingKey], orElse decode: () throws -> T
) throws -> T {
    if T.self == String.self { return unsafeBitCast(try String.unwrap(value, path), to: T.self) }
    if T.self == Int64.self { return unsafeBitCast(try Int64.unwrap(value, path), to: T.self) }
    if T.self == Int.self { return unsafeBitCast(try Int.unwrap(value, path), to: T.self) }
    if T.self == Bool.self { return unsafeBitCast(try Bool.unwrap(value, path), to: T.self) }
    if T.self == Double.self { return unsafeBitCast(try Double.unwrap(value, path), to: T.self) }
    if T.self == UInt64.self { return unsafeBitCast(try UInt64.unwrap(value, path), to: T.self) }
    if T.self == JSONValue.self { return unsafeBitCast(value, to: T.self) }
    return try decode()
}

// MARK: Scalars

/// A type read directly from a JSON scalar, with Foundation's errors.
protocol JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Self
}

extension JSONScalar {
    static func mismatch(_ value: JSONValue, _ path: () -> [any CodingKey]) -> DecodingError {
        if case .null = value {
            return .valueNotFound(
                Self.self,
                .init(
                    codingPath: path(),
                    debugDescription: "Cannot get value of type \(Self.self) -- found null value instead"))
        }
        return .typeMismatch(
            Self.self,
            .init(
                codingPath: path(),
                debugDescription: "Expected to decode \(Self.self) but found \(value.kindDescription) instead."))
    }
}

extension Bool: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch(value, path) }
        return b
    }
}

extension String: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> String {
        guard case .string(let s) = value else { throw mismatch(value, path) }
        return s
    }
}

extension Double: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Double {
        switch value {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: throw mismatch(value, path)
        }
    }
}

extension Float: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Float {
        let d = try Double.unwrap(value, path)
        let f = Float(d)
        guard f.isFinite else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: path(), debugDescription: "Parsed JSON number <\(d)> does not fit in Float."))
        }
        return f
    }
}

/// 2^53: every integer up to this magnitude is exact in a Double, so a Double this small that is integral was
/// written as that integer (`1e2`, `100.0`), not rounded from a longer literal (see ``exactInteger(_:)``).
private let exactDoubleIntegerLimit = 9_007_199_254_740_992.0

/// 2^63: a Double at least this large in magnitude is beyond `Int64` (an integer literal too long for it, or an
/// exponent such as `1e19`).
private let int64MagnitudeLimit = 9_223_372_036_854_775_808.0

extension FixedWidthInteger where Self: JSONScalar {
    /// An integer literal in range. A number with a fraction or exponent is refused, even when integral (`1e2`):
    /// money and counts are written as integers, and a client that writes `100.0` has a float somewhere.
    static func unwrapInteger(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Self {
        switch value {
        case .int(let i):
            guard let n = Self(exactly: i) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: path(), debugDescription: "number \(i) is out of range for \(Self.self)"))
            }
            return n
        case .double(let d):
            guard abs(d) < int64MagnitudeLimit else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: path(), debugDescription: "number \(d) is out of range for \(Self.self)"))
            }
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: path(),
                    debugDescription: "must be an integer without a fraction or exponent, not \(d)"))
        default:
            throw mismatch(value, path)
        }
    }
}

extension Int: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Int {
        try unwrapInteger(value, path)
    }
}
extension Int8: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Int8 {
        try unwrapInteger(value, path)
    }
}
extension Int16: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Int16 {
        try unwrapInteger(value, path)
    }
}
extension Int32: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Int32 {
        try unwrapInteger(value, path)
    }
}
extension Int64: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Int64 {
        try unwrapInteger(value, path)
    }
}
extension UInt: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> UInt {
        try unwrapInteger(value, path)
    }
}
extension UInt8: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> UInt8 {
        try unwrapInteger(value, path)
    }
}
extension UInt16: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> UInt16 {
        try unwrapInteger(value, path)
    }
}
extension UInt32: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> UInt32 {
        try unwrapInteger(value, path)
    }
}
extension UInt64: JSONScalar {
    static func unwrap(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> UInt64 {
        try unwrapInteger(value, path)
    }
}

// MARK: Keyed

/// An object's members. Lookups scan the members (fast for the protocol's small objects); an object with many
/// members gets a hash index first, so decoding a large map stays linear.
struct JSONKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: JSONValueDecoderImpl
    let members: [(key: String, value: JSONValue)]
    let index: [String: Int]?

    static var indexThreshold: Int { 32 }

    init(decoder: JSONValueDecoderImpl, members: [(key: String, value: JSONValue)]) {
        self.decoder = decoder
        self.members = members
        if members.count > Self.indexThreshold {
            var index: [String: Int] = [:]
            index.reserveCapacity(members.count)
            for (offset, member) in members.enumerated() where index[member.key] == nil { index[member.key] = offset }
            self.index = index
        } else {
            self.index = nil
        }
    }

    var codingPath: [any CodingKey] { decoder.codingPath }

    /// The keys `Key` knows, the first member per name, in document order. A plain loop: `compactMap` and a
    /// `Set` here cost more than the rest of decoding a small object (generic metadata look-ups, hashing).
    var allKeys: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(members.count)
        for offset in members.indices {
            let name = members[offset].key
            if let index {
                guard index[name] == offset else { continue }
            } else {
                var repeated = false
                for earlier in members[..<offset] where earlier.key == name {
                    repeated = true
                    break
                }
                if repeated { continue }
            }
            if let key = Key(stringValue: name) { keys.append(key) }
        }
        return keys
    }

    /// The offset of the first member named `key`.
    @inline(__always) func offset(of key: Key) -> Int? {
        let name = key.stringValue
        if let index { return index[name] }
        for offset in members.indices where members[offset].key == name { return offset }
        return nil
    }

    /// The member named `key`, recorded as read (see ``JSONValueDecoderImpl/checkFieldsRead(_:)``).
    @inline(__always) func lookup(_ key: Key) -> JSONValue? {
        guard let offset = offset(of: key) else { return nil }
        decoder.markRead(offset)
        return members[offset].value
    }

    func require(_ key: Key) throws -> JSONValue {
        guard let value = lookup(key) else {
            throw DecodingError.keyNotFound(
                key,
                .init(
                    codingPath: codingPath,
                    debugDescription: "No value associated with key \(key) (\"\(key.stringValue)\")."))
        }
        return value
    }

    /// Whether the member exists; asking does not count as reading it.
    func contains(_ key: Key) -> Bool { offset(of: key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try require(key) { return true }
        return false
    }

    private func scalar<T: JSONScalar>(_ key: Key) throws -> T {
        try T.unwrap(try require(key), { self.codingPath + [key] })
    }

    private func optionalScalar<T: JSONScalar>(_ key: Key) throws -> T? {
        guard let value = lookup(key) else { return nil }
        if case .null = value { return nil }
        return try T.unwrap(value, { self.codingPath + [key] })
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try scalar(key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try scalar(key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try scalar(key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try scalar(key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try scalar(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try scalar(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try scalar(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try scalar(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try scalar(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try scalar(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try scalar(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try scalar(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try scalar(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try scalar(key) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decoder.decodeChild(T.self, try require(key), key: key)
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try optionalScalar(key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try optionalScalar(key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try optionalScalar(key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try optionalScalar(key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try optionalScalar(key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try optionalScalar(key) }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = lookup(key) else { return nil }
        if case .null = value { return nil }
        return try decoder.decodeChild(T.self, value, key: key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try decoder.containerChild(try require(key), key: key).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.containerChild(try require(key), key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        var value = JSONValue.null
        if let offset = members.firstIndex(where: { $0.key == "super" }) {
            decoder.markRead(offset)
            value = members[offset].value
        }
        return decoder.containerChild(value, key: JSONSuperKey())
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        decoder.containerChild(lookup(key) ?? .null, key: key)
    }
}

// MARK: Unkeyed

struct JSONUnkeyedDecodingContainer: UnkeyedDecodingContainer {
    let decoder: JSONValueDecoderImpl
    let elements: [JSONValue]
    var currentIndex = 0

    init(decoder: JSONValueDecoderImpl, elements: [JSONValue]) {
        self.decoder = decoder
        self.elements = elements
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private var elementPath: [any CodingKey] { decoder.codingPath + [JSONIndexKey(currentIndex)] }

    private func next<T>(_ type: T.Type) throws -> JSONValue {
        guard currentIndex < elements.count else {
            throw DecodingError.valueNotFound(
                T.self, .init(codingPath: elementPath, debugDescription: "Unkeyed container is at end."))
        }
        return elements[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard case .null = try next((Any?).self) else { return false }
        currentIndex += 1
        return true
    }

    private mutating func scalar<T: JSONScalar>() throws -> T {
        let value = try T.unwrap(try next(T.self), { self.elementPath })
        currentIndex += 1
        return value
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try scalar() }
    mutating func decode(_ type: String.Type) throws -> String { try scalar() }
    mutating func decode(_ type: Double.Type) throws -> Double { try scalar() }
    mutating func decode(_ type: Float.Type) throws -> Float { try scalar() }
    mutating func decode(_ type: Int.Type) throws -> Int { try scalar() }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try scalar() }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try scalar() }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try scalar() }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try scalar() }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try scalar() }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try scalar() }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try scalar() }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try scalar() }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try scalar() }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try decoder.decodeChild(T.self, try next(T.self), key: JSONIndexKey(currentIndex))
        currentIndex += 1
        return value
    }

    private mutating func nextChild<T>(_ type: T.Type) throws -> JSONValueDecoderImpl {
        decoder.containerChild(try next(T.self), key: JSONIndexKey(currentIndex))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let container = try nextChild(KeyedDecodingContainer<NestedKey>.self).container(keyedBy: NestedKey.self)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try nextChild((any UnkeyedDecodingContainer).self).unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let child = try nextChild((any Decoder).self)
        currentIndex += 1
        return child
    }
}

/// The raw values of a `CaseIterable` type's cases as text; empty when its cases are not `RawRepresentable`.
private func rawValues<C: CaseIterable>(of type: C.Type) -> [String] {
    var out: [String] = []
    for value in C.allCases {
        guard let raw = value as? any RawRepresentable else { return [] }
        out.append("\(raw.rawValue)")
    }
    return out
}
