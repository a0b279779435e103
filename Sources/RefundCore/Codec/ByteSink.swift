/// Where the model encoders write: the primitive layout of ``BinaryWriter``, behind a protocol so the same
/// encoding code (generic, specialised per sink) can count bytes, write into a pre-sized buffer without per-byte
/// checks of a growable array, or append to a `BinaryWriter`.
///
/// Every sink must produce exactly the bytes `BinaryWriter` would.
protocol ByteSink {
    mutating func u8(_ value: UInt8)
    mutating func bool(_ value: Bool)
    mutating func uvarint(_ value: UInt64)
    mutating func svarint(_ value: Int64)
    mutating func string(_ value: String)
    mutating func optionalString(_ value: String?)
}

extension BinaryWriter: ByteSink {}

/// Counts the bytes an encoding takes, writing nothing.
struct ByteCounter: ByteSink {
    var count = 0

    @inline(__always) mutating func u8(_ value: UInt8) { count += 1 }
    @inline(__always) mutating func bool(_ value: Bool) { count += 1 }
    @inline(__always) mutating func uvarint(_ value: UInt64) { count += ByteCounter.uvarintSize(value) }
    @inline(__always) mutating func svarint(_ value: Int64) {
        count += ByteCounter.uvarintSize(UInt64(bitPattern: (value &<< 1) ^ (value >> 63)))
    }
    @inline(__always) mutating func string(_ value: String) {
        let n = value.utf8.count
        count += ByteCounter.uvarintSize(UInt64(n)) + n
    }
    @inline(__always) mutating func optionalString(_ value: String?) {
        count += 1
        if let value { string(value) }
    }

    @inline(__always) static func uvarintSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }
}

/// Writes into a fixed buffer. When the buffer is too small it stops writing and sets `overflowed`; the caller
/// then retries with a buffer of the exact size (see ``ByteCounter``). Each value is one capacity check and direct
/// stores: no uniqueness or growth checks per byte.
struct UnsafeByteSink: ByteSink {
    let buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0
    private(set) var overflowed = false

    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

    /// True when `n` more bytes fit; otherwise marks the sink overflowed (and full, so nothing more is written).
    @inline(__always) private mutating func room(_ n: Int) -> Bool {
        if buffer.count &- count >= n { return true }
        overflowed = true
        count = buffer.count
        return false
    }

    @inline(__always) mutating func u8(_ value: UInt8) {
        guard room(1) else { return }
        buffer[count] = value
        count &+= 1
    }

    @inline(__always) mutating func bool(_ value: Bool) { u8(value ? 1 : 0) }

    @inline(__always) mutating func uvarint(_ value: UInt64) {
        if buffer.count &- count < 10, !room(ByteCounter.uvarintSize(value)) { return }
        var v = value
        var i = count
        while v >= 0x80 {
            buffer[i] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            i &+= 1
        }
        buffer[i] = UInt8(truncatingIfNeeded: v)
        count = i &+ 1
    }

    @inline(__always) mutating func svarint(_ value: Int64) {
        uvarint(UInt64(bitPattern: (value &<< 1) ^ (value >> 63)))
    }

    @inline(__always) mutating func string(_ value: String) {
        var s = value
        s.withUTF8 { utf8 in
            uvarint(UInt64(utf8.count))
            guard room(utf8.count), let source = utf8.baseAddress, let target = buffer.baseAddress else { return }
            (target + count).update(from: source, count: utf8.count)
            count &+= utf8.count
        }
    }

    @inline(__always) mutating func optionalString(_ value: String?) {
        if let value {
            u8(1)
            string(value)
        } else {
            u8(0)
        }
    }
}

/// A value the codecs can write to any sink; gets the fast paths below.
protocol SinkEncodable {
    func encode<S: ByteSink>(to sink: inout S)
}

extension SinkEncodable {
    /// The encoding as a new array: one allocation of `estimate` bytes in the common case, written without
    /// per-byte checks; when the estimate is short, a second pass at the exact size.
    func encodedBytes(estimate: Int) -> [UInt8] {
        var overflowed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: Swift.max(estimate, 16)) { buffer, initialized in
            var sink = UnsafeByteSink(buffer)
            encode(to: &sink)
            overflowed = sink.overflowed
            initialized = overflowed ? 0 : sink.count
        }
        guard overflowed else { return bytes }
        var counter = ByteCounter()
        encode(to: &counter)
        return [UInt8](unsafeUninitializedCapacity: counter.count) { buffer, initialized in
            var sink = UnsafeByteSink(buffer)
            encode(to: &sink)
            initialized = sink.count
        }
    }

    /// Appends the encoding to `writer`: written into a scratch buffer (on the stack when small) and copied in
    /// with one append; when the estimate is short, written to the writer directly.
    func append(to writer: inout BinaryWriter, estimate: Int) {
        let done = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Swift.max(estimate, 16)) { buffer in
            var sink = UnsafeByteSink(buffer)
            encode(to: &sink)
            guard !sink.overflowed else { return false }
            writer.raw(UnsafeBufferPointer(rebasing: buffer[..<sink.count]))
            return true
        }
        if !done { encode(to: &writer) }
    }
}
