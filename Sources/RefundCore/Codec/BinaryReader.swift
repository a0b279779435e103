/// A decoding failure: what was wrong and where (byte offset from the start of the reader's input).
public struct BinaryDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public let offset: Int

    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at byte offset \(offset)" }
}

/// Reads the values written by ``BinaryWriter`` (see there for the layout), checking every length against the
/// bytes that remain. Every read either returns a value and advances, or throws and leaves the position where
/// the failing value started.
///
/// Varints are strict: more than 10 bytes, a 10th byte above 1 (overflow) and non-minimal encodings (a final
/// byte of 0 after a continuation byte) are rejected, so every value has exactly one encoding.
public struct BinaryReader: Sendable {
    @usableFromInline let storage: ArraySlice<UInt8>
    /// Absolute index into `storage` of the next byte.
    @usableFromInline var index: Int

    public init(_ bytes: [UInt8]) {
        storage = bytes[...]
        index = storage.startIndex
    }

    /// Reads a slice without copying it; offsets in errors count from the slice's first byte.
    public init(_ bytes: ArraySlice<UInt8>) {
        storage = bytes
        index = storage.startIndex
    }

    /// Copies the bytes of `buffer`.
    public init(_ buffer: UnsafeRawBufferPointer) {
        self.init(Array(buffer))
    }

    /// The number of bytes consumed so far.
    @inlinable public var offset: Int { index - storage.startIndex }
    /// The number of bytes not yet consumed.
    @inlinable public var remaining: Int { storage.endIndex - index }
    @inlinable public var isAtEnd: Bool { index >= storage.endIndex }

    /// Throws unless every byte has been consumed.
    public func expectEnd() throws(BinaryDecodingError) {
        if !isAtEnd {
            throw BinaryDecodingError(message: "\(remaining) unexpected trailing bytes", offset: offset)
        }
    }

    // MARK: Fixed width

    public mutating func u8() throws(BinaryDecodingError) -> UInt8 {
        guard index < storage.endIndex else { throw truncated("u8", need: 1) }
        let value = storage[index]
        index += 1
        return value
    }

    public mutating func u16() throws(BinaryDecodingError) -> UInt16 {
        try fixed(UInt16.self, "u16")
    }

    public mutating func u32() throws(BinaryDecodingError) -> UInt32 {
        try fixed(UInt32.self, "u32")
    }

    public mutating func u64() throws(BinaryDecodingError) -> UInt64 {
        try fixed(UInt64.self, "u64")
    }

    public mutating func i64() throws(BinaryDecodingError) -> Int64 {
        Int64(bitPattern: try fixed(UInt64.self, "i64"))
    }

    public mutating func bool() throws(BinaryDecodingError) -> Bool {
        let start = offset
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other:
            index -= 1
            throw BinaryDecodingError(message: "invalid bool byte \(other)", offset: start)
        }
    }

    // MARK: Variable width

    public mutating func uvarint() throws(BinaryDecodingError) -> UInt64 {
        let start = index
        // Fast path: one byte.
        if index < storage.endIndex, storage[index] < 0x80 {
            index += 1
            return UInt64(storage[start])
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = index
        while true {
            guard i < storage.endIndex else {
                throw BinaryDecodingError(message: "truncated varint", offset: start - storage.startIndex)
            }
            let byte = storage[i]
            i += 1
            if shift == 63, byte > 1 {
                throw BinaryDecodingError(message: "varint overflows 64 bits", offset: start - storage.startIndex)
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                if byte == 0, i - start > 1 {
                    throw BinaryDecodingError(
                        message: "non-minimal varint encoding", offset: start - storage.startIndex)
                }
                index = i
                return result
            }
            shift += 7
        }
    }

    public mutating func svarint() throws(BinaryDecodingError) -> Int64 {
        let raw = try uvarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A length-prefixed UTF-8 string; invalid UTF-8 is an error, never repaired.
    public mutating func string() throws(BinaryDecodingError) -> String {
        let start = index
        let slice = try lengthPrefixed("string")
        guard let value = String(validating: slice, as: UTF8.self) else {
            index = start
            throw BinaryDecodingError(message: "invalid UTF-8 in string", offset: start - storage.startIndex)
        }
        return value
    }

    /// Length-prefixed bytes, copied out.
    public mutating func bytes() throws(BinaryDecodingError) -> [UInt8] {
        Array(try lengthPrefixed("bytes"))
    }

    /// Length-prefixed bytes as a slice of the input (no copy).
    public mutating func bytesSlice() throws(BinaryDecodingError) -> ArraySlice<UInt8> {
        try lengthPrefixed("bytes")
    }

    public mutating func optionalString() throws(BinaryDecodingError) -> String? {
        try bool() ? try string() : nil
    }

    /// Exactly `count` bytes without a length prefix, as a slice of the input.
    public mutating func raw(count: Int) throws(BinaryDecodingError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw truncated("raw bytes", need: count) }
        let slice = storage[index..<(index + count)]
        index += count
        return slice
    }

    /// Skips `count` bytes.
    public mutating func skip(_ count: Int) throws(BinaryDecodingError) {
        _ = try raw(count: count)
    }

    // MARK: Counts

    /// The most elements a decoder reserves room for before it has read them.
    public static let maximumReservation = 1024

    /// How many elements to reserve for a `count` read from the input. Every count a decoder reads is first
    /// checked against the bytes that remain (each element takes at least one byte), but an element in memory is
    /// many times its smallest encoding, so reserving the whole count could still allocate gigabytes for a crafted
    /// megabyte. Reserve at most ``maximumReservation`` and let a genuinely long array grow as it is read.
    @inlinable
    public static func reservation(for count: Int) -> Int {
        Swift.max(0, Swift.min(count, maximumReservation))
    }

    // MARK: Helpers

    private mutating func lengthPrefixed(_ what: String) throws(BinaryDecodingError) -> ArraySlice<UInt8> {
        let start = index
        let length = try uvarint()
        guard length <= UInt64(remaining) else {
            index = start
            throw BinaryDecodingError(
                message: "truncated \(what): length \(length) but only \(remaining) bytes remain",
                offset: start - storage.startIndex)
        }
        let count = Int(length)
        let slice = storage[index..<(index + count)]
        index += count
        return slice
    }

    @inline(__always)
    private mutating func fixed<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(BinaryDecodingError) -> T {
        let size = MemoryLayout<T>.size
        guard storage.endIndex - index >= size else { throw truncated(what, need: size) }
        let at = index - storage.startIndex
        let value = storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) }
        index += size
        return T(littleEndian: value)
    }

    private func truncated(_ what: String, need: Int) -> BinaryDecodingError {
        BinaryDecodingError(message: "truncated \(what): need \(need) bytes, \(remaining) remain", offset: offset)
    }
}
