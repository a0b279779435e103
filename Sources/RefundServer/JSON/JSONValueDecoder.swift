/// Decodes `Decodable` types from a parsed ``JSONValue`` (or straight from UTF-8 bytes), with the semantics of
/// Foundation's `JSONDecoder` in its default configuration: the same `DecodingError` cases with the same coding
/// paths (so the protocol's error mapping names the field, e.g. `order.lines[0].price`), `decodeIfPresent`
/// returning nil for a missing key or `null`, the first member winning for a repeated key.
///
/// Numbers: an integer type accepts an integer literal in its range, and a number with a fraction or exponent only
/// when it is integral and at most 2^53 in magnitude (so exact: `1e2` is 100). Anything else, including an
/// integer literal beyond `Int64` (which the parser could only hold as a rounded Double) is a
/// `DecodingError.dataCorrupted` at that field: out of range, never rounded. `UInt64` values above `Int64.max`
/// are therefore refused too (no field of the protocol gets near them).
public struct JSONValueDecoder: Sendable {
    public var parser: JSONParser

    public init(parser: JSONParser = JSONParser()) {
        self.parser = parser
    }

    /// Decodes `type` from an already parsed value.
    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONValueDecoderImpl(value: value, parent: nil, key: nil).decodeValue(T.self)
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
final class JSONValueDecoderImpl: Decoder, SingleValueDecodingContainer {
    let value: JSONValue
    let parent: JSONValueDecoderImpl?
    let key: (any CodingKey)?

    init(value: JSONValue, parent: JSONValueDecoderImpl?, key: (any CodingKey)?) {
        self.value = value
        self.parent = parent
        self.key = key
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
        JSONValueDecoderImpl(value: value, parent: self, key: key)
    }

    // MARK: Containers

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch value {
        case .object(let members):
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

    /// Decodes this decoder's value as `T`: scalars directly, everything else through `T.init(from:)`.
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeScalar(T.self, value, { self.codingPath }, orElse: { try T(from: self) })
    }

    /// Decodes a member or element `value` (at `key` under this decoder) as `T`.
    func decodeChild<T: Decodable>(_ type: T.Type, _ value: JSONValue, key: any CodingKey) throws -> T {
        try decodeScalar(T.self, value, { self.codingPath + [key] }, orElse: { try T(from: child(value, key: key)) })
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
/// written as that integer (`1e2`, `100.0`), not rounded from a longer literal.
private let exactDoubleIntegerLimit = 9_007_199_254_740_992.0

extension FixedWidthInteger where Self: JSONScalar {
    static func unwrapInteger(_ value: JSONValue, _ path: () -> [any CodingKey]) throws -> Self {
        switch value {
        case .int(let i):
            guard let n = Self(exactly: i) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: path(), debugDescription: "number \(i) is out of range for \(Self.self)"))
            }
            return n
        case .double(let d):
            guard d == d.rounded(.towardZero) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: path(), debugDescription: "number \(d) is not an integer (\(Self.self))"))
            }
            guard abs(d) <= exactDoubleIntegerLimit, let n = Self(exactly: d) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: path(), debugDescription: "number \(d) is out of range for \(Self.self)"))
            }
            return n
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

    @inline(__always) func lookup(_ key: Key) -> JSONValue? {
        let name = key.stringValue
        if let index {
            guard let offset = index[name] else { return nil }
            return members[offset].value
        }
        for member in members where member.key == name { return member.value }
        return nil
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

    func contains(_ key: Key) -> Bool { lookup(key) != nil }

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
        try decoder.child(try require(key), key: key).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.child(try require(key), key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        decoder.child(members.first { $0.key == "super" }?.value ?? .null, key: JSONSuperKey())
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        decoder.child(lookup(key) ?? .null, key: key)
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
        let child = decoder.child(try next(T.self), key: JSONIndexKey(currentIndex))
        return child
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
