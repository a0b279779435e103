/// Appends little-endian binary values to a growable byte buffer.
///
/// Layout rules (shared with ``BinaryReader``):
/// - fixed-width integers are little-endian;
/// - `uvarint` is unsigned LEB128 (7 bits per byte, low group first, at most 10 bytes);
/// - `svarint` is zigzag-mapped (`(n << 1) ^ (n >> 63)`) and then written as a `uvarint`;
/// - `bool` is one byte, `0` or `1`;
/// - `string` and `bytes` are a `uvarint` byte count followed by the bytes (UTF-8 for strings);
/// - `optionalString` is a `bool` presence flag followed by the string when present.
///
/// The writer never allocates per value: it appends into one array whose capacity is reserved up front
/// and grows geometrically.
public struct BinaryWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer whose buffer can hold `capacity` bytes before it has to grow.
    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(Swift.max(capacity, 0))
    }

    /// The number of bytes written so far.
    @inlinable public var count: Int { bytes.count }

    /// Makes sure at least `additional` more bytes fit without reallocating.
    public mutating func reserve(additional: Int) {
        bytes.reserveCapacity(bytes.count + Swift.max(additional, 0))
    }

    /// Forgets the bytes written so far, keeping the allocated capacity for reuse.
    public mutating func removeAll(keepingCapacity: Bool = true) {
        bytes.removeAll(keepingCapacity: keepingCapacity)
    }

    /// Returns the bytes written so far and leaves the writer empty.
    public mutating func take() -> [UInt8] {
        let result = bytes
        bytes = []
        return result
    }

    // MARK: Fixed width

    public mutating func u8(_ value: UInt8) {
        bytes.append(value)
    }

    public mutating func u16(_ value: UInt16) {
        appendLittleEndian(value)
    }

    public mutating func u32(_ value: UInt32) {
        appendLittleEndian(value)
    }

    public mutating func u64(_ value: UInt64) {
        appendLittleEndian(value)
    }

    public mutating func i64(_ value: Int64) {
        appendLittleEndian(UInt64(bitPattern: value))
    }

    public mutating func bool(_ value: Bool) {
        bytes.append(value ? 1 : 0)
    }

    // MARK: Variable width

    /// Unsigned LEB128: 1 byte for values below 128, at most 10 bytes.
    public mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    /// Zigzag-encoded signed varint: small magnitudes of either sign take few bytes.
    public mutating func svarint(_ value: Int64) {
        uvarint(UInt64(bitPattern: (value &<< 1) ^ (value >> 63)))
    }

    /// A `uvarint` byte count followed by the UTF-8 bytes of `value`.
    public mutating func string(_ value: String) {
        var s = value
        s.withUTF8 { utf8 in
            uvarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// A `uvarint` byte count followed by the bytes.
    public mutating func bytes(_ value: [UInt8]) {
        uvarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A `uvarint` byte count followed by the bytes.
    public mutating func bytes(_ value: ArraySlice<UInt8>) {
        uvarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A presence flag (`bool`) followed by the string when present.
    public mutating func optionalString(_ value: String?) {
        if let value {
            bool(true)
            string(value)
        } else {
            bool(false)
        }
    }

    /// Appends bytes verbatim, without a length prefix.
    public mutating func raw(_ value: some Sequence<UInt8>) {
        bytes.append(contentsOf: value)
    }

    /// Overwrites four bytes at `offset` with `value` (little-endian). Used to patch lengths and checksums
    /// into a header that was written before the data it describes.
    public mutating func patchU32(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "patchU32 outside the written bytes")
        bytes[offset] = UInt8(truncatingIfNeeded: value)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: value >> 24)
    }

    @inline(__always)
    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }
}
