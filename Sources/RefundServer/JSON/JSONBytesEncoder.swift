/// Encodes `Encodable` values straight to JSON bytes: no intermediate tree, keyed containers write `"key":value`
/// in call order. The output parses (with `JSONSerialization`, or any JSON parser) to the same value as Foundation's
/// `JSONEncoder` output with `.withoutEscapingSlashes` (key order aside): `encodeIfPresent` skips nil,
/// `encodeNil` writes `null`, doubles print as Foundation's (`1` for 1.0, `1e+20`), non-finite doubles throw
/// `EncodingError.invalidValue`, strings escape `"`, `\` and U+0000–U+001F and nothing else.
///
/// Streaming has one restriction Foundation's tree encoder does not: a container must be written before its
/// parent container writes its next member (the way synthesized and hand-written `encode(to:)` methods use
/// them). Writing to a container after a later sibling was started throws `EncodingError.invalidValue` instead of
/// producing wrong JSON. Asking an encoder for its keyed container again (as `Stats` and `ReceiptResult` do after
/// encoding another value into the same encoder) continues the same object, as Foundation merges them.
public struct JSONBytesEncoder: Sendable {
    public init() {}

    /// The JSON bytes of `value`.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        try encode(value, into: &bytes)
        return bytes
    }

    /// Appends the JSON of `value` to `bytes`. On error `bytes` holds what it held before.
    public func encode<T: Encodable>(_ value: T, into bytes: inout [UInt8]) throws {
        let writer = JSONWriter()
        let start = bytes.count
        swap(&writer.bytes, &bytes)
        defer { swap(&writer.bytes, &bytes) }
        do {
            try writer.encodeValue(value, depth: 0)
            writer.closeFrames(downTo: 0)
            if let failure = writer.failure { throw failure }
            guard writer.bytes.count > start else {
                throw EncodingError.invalidValue(
                    value, .init(codingPath: [], debugDescription: "Top-level \(T.self) did not encode any values."))
            }
        } catch {
            writer.bytes.removeSubrange(start...)
            throw error
        }
    }
}

private let quote = UInt8(ascii: "\"")

/// The output and the stack of open containers.
final class JSONWriter {
    struct Frame {
        var isObject: Bool
        /// Members or elements written so far.
        var count: Int
        /// Identifies the container, so a stale one (its frame closed, the index reused) is caught.
        var id: Int
        /// The key of the last member (objects), for coding paths.
        var lastKey: (any CodingKey)?
        /// After `superEncoder()`: the output length right after its key, to write `{}` if it stays empty.
        var pendingValueAt: Int?
    }

    struct State {
        var bytes: [UInt8] = []
        var frames: [Frame] = []
        var nextFrameID = 0
        /// The first misuse found; thrown when the top-level value is done.
        var failure: EncodingError?
    }

    // The state lives behind a pointer owned by this object: stored `var`s of a class are checked for exclusive
    // access at run time on every use (swift_beginAccess/endAccess), which measured ~35% of the encoding time.
    // The writer is used by one encode call on one thread, so the checks buy nothing here.
    private let state: UnsafeMutablePointer<State>

    init() {
        state = .allocate(capacity: 1)
        state.initialize(to: State())
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
    }

    var bytes: [UInt8] {
        _read { yield state.pointee.bytes }
        _modify { yield &state.pointee.bytes }
    }

    var frames: [Frame] {
        _read { yield state.pointee.frames }
        _modify { yield &state.pointee.frames }
    }

    var nextFrameID: Int {
        _read { yield state.pointee.nextFrameID }
        _modify { yield &state.pointee.nextFrameID }
    }

    var failure: EncodingError? {
        _read { yield state.pointee.failure }
        _modify { yield &state.pointee.failure }
    }

    /// The coding path of a value at `depth`: the last key of every enclosing container.
    func path(_ depth: Int) -> [any CodingKey] {
        frames.prefix(depth).map { frame in
            frame.isObject ? (frame.lastKey ?? JSONSuperKey()) : JSONIndexKey(max(0, frame.count - 1))
        }
    }

    func fail(_ message: String, depth: Int) {
        if failure == nil {
            failure = .invalidValue(
                message, .init(codingPath: path(min(depth, frames.count)), debugDescription: message))
        }
    }

    // MARK: Containers

    func closeFrames(downTo depth: Int) {
        while frames.count > depth {
            let index = frames.count - 1
            settlePending(index)
            bytes.append(frames[index].isObject ? UInt8(ascii: "}") : UInt8(ascii: "]"))
            frames.removeLast()
        }
    }

    /// A `superEncoder()` that wrote nothing gets `{}`, as Foundation's.
    @inline(__always) func settlePending(_ index: Int) {
        if let at = frames[index].pendingValueAt {
            if bytes.count == at { bytes.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")]) }
            frames[index].pendingValueAt = nil
        }
    }

    /// The container of the value at `depth`: opens it, or continues the one that value already opened.
    func container(isObject: Bool, depth: Int) -> (index: Int, id: Int) {
        if frames.count > depth + 1 { closeFrames(downTo: depth + 1) }
        if frames.count == depth + 1 {
            if frames[depth].isObject != isObject {
                fail("a keyed and an unkeyed container requested for one value", depth: depth)
            }
            return (depth, frames[depth].id)
        }
        guard frames.count == depth else {
            fail("an encoder used after its value was finished", depth: depth)
            return (depth, -1)
        }
        return open(isObject: isObject)
    }

    func open(isObject: Bool) -> (index: Int, id: Int) {
        bytes.append(isObject ? UInt8(ascii: "{") : UInt8(ascii: "["))
        nextFrameID += 1
        frames.append(Frame(isObject: isObject, count: 0, id: nextFrameID))
        return (frames.count - 1, nextFrameID)
    }

    /// Checks that container `index`/`id` is still open, closes its finished children, writes the separator.
    @inline(__always) func begin(_ index: Int, _ id: Int) throws {
        guard index < frames.count, frames[index].id == id else { throw misuse(index) }
        if frames.count > index + 1 { closeFrames(downTo: index + 1) }
        settlePending(index)
        if frames[index].count > 0 { bytes.append(UInt8(ascii: ",")) }
        frames[index].count += 1
    }

    func misuse(_ index: Int) -> EncodingError {
        .invalidValue(
            "container",
            .init(
                codingPath: path(min(index, frames.count)),
                debugDescription: "a container was written to after a later sibling was started"))
    }

    /// `"key":` in object `index`.
    @inline(__always) func beginMember<Key: CodingKey>(_ index: Int, _ id: Int, _ key: Key) throws {
        try begin(index, id)
        frames[index].lastKey = key
        writeString(key.stringValue)
        bytes.append(UInt8(ascii: ":"))
    }

    // MARK: Values

    /// Writes `value` as the value at `depth` (its key or separator already written).
    func encodeValue<T: Encodable>(_ value: T, depth: Int) throws {
        // The common scalars without the Encodable round trip.
        if T.self == String.self, let s = value as? String { return writeString(s) }
        if T.self == Int64.self, let i = value as? Int64 { return writeInteger(i) }
        if T.self == Int.self, let i = value as? Int { return writeInteger(Int64(i)) }
        if T.self == Bool.self, let b = value as? Bool { return writeBool(b) }
        if T.self == UInt64.self, let u = value as? UInt64 { return writeUnsigned(u) }
        if T.self == Double.self, let d = value as? Double { return try writeDouble(d, depth: depth) }
        if T.self == JSONValue.self, let v = value as? JSONValue { return try writeJSONValue(v, depth: depth) }
        let start = bytes.count
        try value.encode(to: JSONBytesEncoderImpl(writer: self, depth: depth))
        closeFrames(downTo: depth)
        // A value that encoded nothing is an empty object, as with Foundation.
        if bytes.count == start && depth > 0 { bytes.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")]) }
    }

    /// A scalar written through a single-value container: only where nothing was written for this value yet.
    @inline(__always) func beginSingleValue(depth: Int) {
        if frames.count != depth { fail("a single value encoded into a value that has a container", depth: depth) }
    }

    @inline(__always) func writeBool(_ b: Bool) {
        if b {
            bytes.append(contentsOf: [UInt8(ascii: "t"), UInt8(ascii: "r"), UInt8(ascii: "u"), UInt8(ascii: "e")])
        } else {
            bytes.append(contentsOf: [
                UInt8(ascii: "f"), UInt8(ascii: "a"), UInt8(ascii: "l"), UInt8(ascii: "s"), UInt8(ascii: "e"),
            ])
        }
    }

    @inline(__always) func writeNull() {
        bytes.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
    }

    @inline(__always) func writeInteger(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        writeUnsigned(value.magnitude)
    }

    func writeUnsigned(_ value: UInt64) { JSONText.appendUnsigned(value, to: &bytes) }

    func writeDouble(_ value: Double, depth: Int) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(
                value,
                .init(codingPath: path(depth), debugDescription: "Unable to encode Double.\(value) directly in JSON."))
        }
        writeFloatingText(value.description)
    }

    func writeFloat(_ value: Float, depth: Int) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(
                value,
                .init(codingPath: path(depth), debugDescription: "Unable to encode Float.\(value) directly in JSON."))
        }
        writeFloatingText(value.description)
    }

    /// Swift's shortest round-trip text, without a trailing `.0` (as Foundation writes `1` for 1.0).
    private func writeFloatingText(_ text: String) {
        var utf8 = Array(text.utf8)
        if utf8.count > 2, utf8[utf8.count - 1] == UInt8(ascii: "0"), utf8[utf8.count - 2] == UInt8(ascii: ".") {
            utf8.removeLast(2)
        }
        bytes.append(contentsOf: utf8)
    }

    func writeString(_ string: String) {
        bytes.append(quote)
        if let done = string.utf8.withContiguousStorageIfAvailable({ appendEscaped($0) }) {
            _ = done
        } else {
            appendEscaped(Array(string.utf8))
        }
        bytes.append(quote)
    }

    private func appendEscaped(_ utf8: [UInt8]) {
        utf8.withUnsafeBufferPointer { appendEscaped($0) }
    }

    private func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) { JSONText.appendEscaped(utf8, to: &bytes) }

    func writeJSONValue(_ value: JSONValue, depth: Int) throws {
        switch value {
        case .null: writeNull()
        case .bool(let b): writeBool(b)
        case .int(let i): writeInteger(i)
        case .double(let d):
            // Keeps `.0` (`100.0`), so a JSONValue reads back as the same case, not as `.int`.
            guard d.isFinite else { return try writeDouble(d, depth: depth) }
            bytes.append(contentsOf: d.description.utf8)
        case .string(let s): writeString(s)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                try writeJSONValue(element, depth: depth + 1)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (offset, member) in members.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                writeString(member.key)
                bytes.append(UInt8(ascii: ":"))
                try writeJSONValue(member.value, depth: depth + 1)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}

/// The encoder handed to `encode(to:)`: the writer and the depth of the value. Two words: it fits an existential
/// without an allocation. It is also that value's single-value container.
struct JSONBytesEncoderImpl: Encoder, SingleValueEncodingContainer {
    let writer: JSONWriter
    let depth: Int

    var codingPath: [any CodingKey] { writer.path(depth) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let (index, id) = writer.container(isObject: true, depth: depth)
        return KeyedEncodingContainer(JSONKeyedEncodingContainer<Key>(writer: writer, index: index, id: id))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let (index, id) = writer.container(isObject: false, depth: depth)
        return JSONUnkeyedEncodingContainer(writer: writer, index: index, id: id)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    // MARK: SingleValueEncodingContainer

    func encodeNil() throws {
        writer.beginSingleValue(depth: depth)
        writer.writeNull()
    }

    func encode(_ value: Bool) throws {
        writer.beginSingleValue(depth: depth)
        writer.writeBool(value)
    }

    func encode(_ value: String) throws {
        writer.beginSingleValue(depth: depth)
        writer.writeString(value)
    }

    func encode(_ value: Double) throws {
        writer.beginSingleValue(depth: depth)
        try writer.writeDouble(value, depth: depth)
    }

    func encode(_ value: Float) throws {
        writer.beginSingleValue(depth: depth)
        try writer.writeFloat(value, depth: depth)
    }

    func encode(_ value: Int) throws { try integer(Int64(value)) }
    func encode(_ value: Int8) throws { try integer(Int64(value)) }
    func encode(_ value: Int16) throws { try integer(Int64(value)) }
    func encode(_ value: Int32) throws { try integer(Int64(value)) }
    func encode(_ value: Int64) throws { try integer(value) }
    func encode(_ value: UInt) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt8) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt16) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt32) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt64) throws { try unsigned(value) }

    func encode<T: Encodable>(_ value: T) throws {
        writer.beginSingleValue(depth: depth)
        try writer.encodeValue(value, depth: depth)
    }

    private func integer(_ value: Int64) throws {
        writer.beginSingleValue(depth: depth)
        writer.writeInteger(value)
    }

    private func unsigned(_ value: UInt64) throws {
        writer.beginSingleValue(depth: depth)
        writer.writeUnsigned(value)
    }
}

struct JSONKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let writer: JSONWriter
    let index: Int
    let id: Int

    var codingPath: [any CodingKey] { writer.path(index) }

    func encodeNil(forKey key: Key) throws {
        try writer.beginMember(index, id, key)
        writer.writeNull()
    }

    func encode(_ value: Bool, forKey key: Key) throws {
        try writer.beginMember(index, id, key)
        writer.writeBool(value)
    }

    func encode(_ value: String, forKey key: Key) throws {
        try writer.beginMember(index, id, key)
        writer.writeString(value)
    }

    func encode(_ value: Double, forKey key: Key) throws {
        try writer.beginMember(index, id, key)
        try writer.writeDouble(value, depth: index + 1)
    }

    func encode(_ value: Float, forKey key: Key) throws {
        try writer.beginMember(index, id, key)
        try writer.writeFloat(value, depth: index + 1)
    }

    func encode(_ value: Int, forKey key: Key) throws { try integer(Int64(value), key) }
    func encode(_ value: Int8, forKey key: Key) throws { try integer(Int64(value), key) }
    func encode(_ value: Int16, forKey key: Key) throws { try integer(Int64(value), key) }
    func encode(_ value: Int32, forKey key: Key) throws { try integer(Int64(value), key) }
    func encode(_ value: Int64, forKey key: Key) throws { try integer(value, key) }
    func encode(_ value: UInt, forKey key: Key) throws { try unsigned(UInt64(value), key) }
    func encode(_ value: UInt8, forKey key: Key) throws { try unsigned(UInt64(value), key) }
    func encode(_ value: UInt16, forKey key: Key) throws { try unsigned(UInt64(value), key) }
    func encode(_ value: UInt32, forKey key: Key) throws { try unsigned(UInt64(value), key) }
    func encode(_ value: UInt64, forKey key: Key) throws { try unsigned(value, key) }

    func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try writer.beginMember(index, id, key)
        try writer.encodeValue(value, depth: index + 1)
    }

    private func integer(_ value: Int64, _ key: Key) throws {
        try writer.beginMember(index, id, key)
        writer.writeInteger(value)
    }

    private func unsigned(_ value: UInt64, _ key: Key) throws {
        try writer.beginMember(index, id, key)
        writer.writeUnsigned(value)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let (index, id) = nested(isObject: true, key)
        return KeyedEncodingContainer(JSONKeyedEncodingContainer<NestedKey>(writer: writer, index: index, id: id))
    }

    func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let (index, id) = nested(isObject: false, key)
        return JSONUnkeyedEncodingContainer(writer: writer, index: index, id: id)
    }

    private func nested(isObject: Bool, _ key: Key) -> (index: Int, id: Int) {
        do {
            try writer.beginMember(index, id, key)
        } catch {
            writer.fail("a nested container requested from a finished container", depth: index)
            return (index + 1, -1)
        }
        return writer.open(isObject: isObject)
    }

    func superEncoder() -> any Encoder { superEncoder(key: JSONSuperKey()) }

    func superEncoder(forKey key: Key) -> any Encoder { superEncoder(key: key) }

    private func superEncoder<K: CodingKey>(key: K) -> any Encoder {
        do {
            try writer.beginMember(index, id, key)
        } catch {
            writer.fail("a super encoder requested from a finished container", depth: index)
        }
        if index < writer.frames.count { writer.frames[index].pendingValueAt = writer.bytes.count }
        return JSONBytesEncoderImpl(writer: writer, depth: index + 1)
    }
}

struct JSONUnkeyedEncodingContainer: UnkeyedEncodingContainer {
    let writer: JSONWriter
    let index: Int
    let id: Int

    var codingPath: [any CodingKey] { writer.path(index) }

    var count: Int {
        guard index < writer.frames.count, writer.frames[index].id == id else { return 0 }
        return writer.frames[index].count
    }

    func encodeNil() throws {
        try writer.begin(index, id)
        writer.writeNull()
    }

    func encode(_ value: Bool) throws {
        try writer.begin(index, id)
        writer.writeBool(value)
    }

    func encode(_ value: String) throws {
        try writer.begin(index, id)
        writer.writeString(value)
    }

    func encode(_ value: Double) throws {
        try writer.begin(index, id)
        try writer.writeDouble(value, depth: index + 1)
    }

    func encode(_ value: Float) throws {
        try writer.begin(index, id)
        try writer.writeFloat(value, depth: index + 1)
    }

    func encode(_ value: Int) throws { try integer(Int64(value)) }
    func encode(_ value: Int8) throws { try integer(Int64(value)) }
    func encode(_ value: Int16) throws { try integer(Int64(value)) }
    func encode(_ value: Int32) throws { try integer(Int64(value)) }
    func encode(_ value: Int64) throws { try integer(value) }
    func encode(_ value: UInt) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt8) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt16) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt32) throws { try unsigned(UInt64(value)) }
    func encode(_ value: UInt64) throws { try unsigned(value) }

    func encode<T: Encodable>(_ value: T) throws {
        try writer.begin(index, id)
        try writer.encodeValue(value, depth: index + 1)
    }

    private func integer(_ value: Int64) throws {
        try writer.begin(index, id)
        writer.writeInteger(value)
    }

    private func unsigned(_ value: UInt64) throws {
        try writer.begin(index, id)
        writer.writeUnsigned(value)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let (index, id) = nested(isObject: true)
        return KeyedEncodingContainer(JSONKeyedEncodingContainer<NestedKey>(writer: writer, index: index, id: id))
    }

    func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let (index, id) = nested(isObject: false)
        return JSONUnkeyedEncodingContainer(writer: writer, index: index, id: id)
    }

    private func nested(isObject: Bool) -> (index: Int, id: Int) {
        do {
            try writer.begin(index, id)
        } catch {
            writer.fail("a nested container requested from a finished container", depth: index)
            return (index + 1, -1)
        }
        return writer.open(isObject: isObject)
    }

    func superEncoder() -> any Encoder {
        do {
            try writer.begin(index, id)
        } catch {
            writer.fail("a super encoder requested from a finished container", depth: index)
        }
        if index < writer.frames.count { writer.frames[index].pendingValueAt = writer.bytes.count }
        return JSONBytesEncoderImpl(writer: writer, depth: index + 1)
    }
}
