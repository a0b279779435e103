import RefundCore

/// The on-disk layout of WAL segment files (see docs/wal-format.md for the full description).
///
/// A segment is `wal-<segment number, 16 decimal digits>.log`:
///
///     header  (27 bytes): "RFWAL" | version u16 | segment number u64 | first sequence u64 | CRC32C u32 of the 23 bytes before
///     block*:  frame header (24 bytes) | payload (stored length bytes) | CRC32C u32 of frame header + payload
///
/// Frame header: magic/flags u32 (high 16 bits 0xB10C, low 16 bits flags; bit 0 = payload is LZ4) |
/// stored length u32 | uncompressed length u32 | record count u32 | first sequence u64. The uncompressed payload is
/// `record count` records, each a uvarint byte count followed by the record's bytes; they carry consecutive
/// sequence numbers starting at the frame's first sequence. All integers are little-endian.
public enum SegmentFormat {
    public static let magic: [UInt8] = Array("RFWAL".utf8)
    public static let version: UInt16 = 1
    public static let headerSize = 27
    public static let blockMagic: UInt32 = 0xB10C_0000
    public static let blockMagicMask: UInt32 = 0xFFFF_0000
    /// Flag bit: the payload is LZ4-compressed (otherwise it is stored as is, when compression does not help).
    public static let flagLZ4: UInt32 = 0x0001
    public static let knownFlags: UInt32 = flagLZ4
    public static let frameHeaderSize = 24
    public static let frameTrailerSize = 4
    public static let frameOverhead = frameHeaderSize + frameTrailerSize
    /// The largest record the log accepts.
    public static let maxRecordBytes = 16 << 20
    /// Blocks are cut once their uncompressed payload reaches this size (a single larger record gets a block alone).
    public static let maxBlockPayload = 1 << 20
    /// The largest uncompressed payload a reader accepts: a full block plus one record of the largest size (and
    /// its length prefix). Anything larger was not written by this log.
    public static let maxUncompressedPayload = maxBlockPayload + maxRecordBytes + 16
    /// The highest sequence number a file may carry (a segment's or block's first sequence, a block's last, a
    /// snapshot's). Sequence numbers start at 1; capping them at `Int64.max` leaves 2^63 appends of room before
    /// `UInt64` arithmetic on them (`next = first + count`, `last + 1`, `next - 1`) could overflow, so a number
    /// read from disk is checked against this once and can then be used without overflow checks.
    public static let maxSequence = UInt64(Int64.max)
    /// LZ4 turns one stored byte into at most 255 output bytes (a run-length byte of 255), so an uncompressed
    /// length above `stored * lz4MaxExpansion` cannot be what the stored bytes decompress to. Checked before
    /// anything is allocated for the uncompressed bytes.
    public static let lz4MaxExpansion: UInt64 = 256

    public static let filePrefix = "wal-"
    public static let fileSuffix = ".log"

    public static func fileName(segment number: UInt64) -> String {
        filePrefix + zeroPadded(number, width: 16) + fileSuffix
    }

    /// The segment number of a segment file name, or nil when `name` is not one.
    public static func segmentNumber(fileName name: String) -> UInt64? {
        guard name.hasPrefix(filePrefix), name.hasSuffix(fileSuffix) else { return nil }
        let digits = name.dropFirst(filePrefix.count).dropLast(fileSuffix.count)
        guard digits.count == 16, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }

    public struct SegmentHeader: Sendable, Equatable {
        public var segmentNumber: UInt64
        public var firstSequence: UInt64

        public init(segmentNumber: UInt64, firstSequence: UInt64) {
            self.segmentNumber = segmentNumber
            self.firstSequence = firstSequence
        }
    }

    public static func encodeHeader(_ header: SegmentHeader) -> [UInt8] {
        var w = BinaryWriter(capacity: headerSize)
        w.raw(magic)
        w.u16(version)
        w.u64(header.segmentNumber)
        w.u64(header.firstSequence)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes a segment header; nil when the bytes are short, carry the wrong magic or version, fail the CRC, or
    /// name a first sequence number outside `1...maxSequence` (a header that verifies but says so is corrupt:
    /// sequence numbers start at 1, and the log counts on `nextSequence - 1` and `first + count` not wrapping).
    static func decodeHeader(_ bytes: [UInt8]) -> (header: SegmentHeader?, problem: String) {
        guard bytes.count >= headerSize else { return (nil, "segment header is short (\(bytes.count) bytes)") }
        var r = BinaryReader(bytes[0..<headerSize])
        do {
            guard Array(try r.raw(count: magic.count)) == magic else { return (nil, "bad segment magic") }
            let v = try r.u16()
            let number = try r.u64()
            let first = try r.u64()
            let crc = try r.u32()
            guard crc == CRC32C.checksum(bytes[0..<(headerSize - 4)]) else {
                return (nil, "segment header checksum mismatch")
            }
            guard v == version else { return (nil, "unsupported segment format version \(v)") }
            guard first >= 1, first <= maxSequence else {
                return (nil, "segment header's first sequence \(first) is outside 1...\(maxSequence)")
            }
            return (SegmentHeader(segmentNumber: number, firstSequence: first), "")
        } catch {
            return (nil, "segment header: \(error)")
        }
    }

    // MARK: Blocks

    struct FrameHeader: Sendable, Equatable {
        var flags: UInt32
        var storedLength: Int
        var uncompressedLength: Int
        var recordCount: Int
        var firstSequence: UInt64

        var frameLength: Int { frameHeaderSize + storedLength + frameTrailerSize }
        var lastSequence: UInt64 { firstSequence &+ UInt64(recordCount) &- 1 }
    }

    enum FrameCheck {
        /// A frame whose checksum verifies; the payload is `bytes[payload]`.
        case valid(FrameHeader, payload: Range<Int>)
        /// The frame runs past the end of the file (short header or length beyond EOF).
        case truncated(String)
        /// Bad magic, unknown flags, impossible lengths or a checksum mismatch.
        case invalid(String)
    }

    /// Checks the frame starting at `offset` without decompressing it.
    static func checkFrame(_ bytes: [UInt8], at offset: Int) -> FrameCheck {
        let available = bytes.count - offset
        guard available >= frameHeaderSize else {
            return .truncated("frame header is short (\(available) of \(frameHeaderSize) bytes)")
        }
        var r = BinaryReader(bytes[offset..<(offset + frameHeaderSize)])
        let magicFlags: UInt32
        let stored: UInt32
        let uncompressed: UInt32
        let count: UInt32
        let first: UInt64
        do {
            magicFlags = try r.u32()
            stored = try r.u32()
            uncompressed = try r.u32()
            count = try r.u32()
            first = try r.u64()
        } catch {
            return .truncated("frame header: \(error)")
        }
        guard magicFlags & blockMagicMask == blockMagic else { return .invalid("bad block magic") }
        let flags = magicFlags & ~blockMagicMask
        guard flags & ~knownFlags == 0 else { return .invalid("unknown block flags 0x\(String(flags, radix: 16))") }
        let storedLength = Int(stored)
        let end = offset + frameHeaderSize + storedLength + frameTrailerSize
        guard end <= bytes.count else {
            return .truncated("block of \(storedLength) payload bytes runs past the end of the file")
        }
        let payload = (offset + frameHeaderSize)..<(offset + frameHeaderSize + storedLength)
        var crc = CRC32C()
        crc.update(bytes[offset..<payload.upperBound])
        let expected =
            UInt32(bytes[end - 4]) | UInt32(bytes[end - 3]) << 8 | UInt32(bytes[end - 2]) << 16
            | UInt32(bytes[end - 1]) << 24
        guard crc.value == expected else { return .invalid("block checksum mismatch") }
        // The checksum only says the writer wrote these numbers; every one of them is bounded here, once, so that
        // readers can do arithmetic and allocate with them without overflow checks of their own.
        if let problem = frameFieldProblem(
            flags: flags, stored: stored, uncompressed: uncompressed, count: count, first: first)
        {
            return .invalid("block header fields are inconsistent: \(problem)")
        }
        let header = FrameHeader(
            flags: flags, storedLength: storedLength, uncompressedLength: Int(uncompressed),
            recordCount: Int(count), firstSequence: first)
        return .valid(header, payload: payload)
    }

    /// Why the numbers of a frame header cannot be what the writer produces, or nil when they can:
    ///
    /// - `count` is at least 1 and at most `uncompressed` (every record takes at least its 1-byte length prefix),
    ///   so `decodeRecords` never reserves room for more records than there are bytes;
    /// - `first` is in `1...maxSequence` and so is the last sequence `first + count - 1`, so `first + count`
    ///   (the next block's first sequence) cannot overflow;
    /// - `uncompressed` is at most ``maxUncompressedPayload``;
    /// - a raw payload is stored as is (`stored == uncompressed`); an LZ4 payload is only written when it is
    ///   smaller than the raw bytes (`stored < uncompressed`), and cannot expand by more than ``lz4MaxExpansion``,
    ///   so a few stored bytes never make the reader allocate megabytes.
    static func frameFieldProblem(
        flags: UInt32, stored: UInt32, uncompressed: UInt32, count: UInt32, first: UInt64
    ) -> String? {
        guard count >= 1 else { return "record count is 0" }
        guard count <= uncompressed else {
            return "record count \(count) exceeds the \(uncompressed) uncompressed payload bytes"
        }
        guard uncompressed <= maxUncompressedPayload else {
            return "uncompressed length \(uncompressed) exceeds \(maxUncompressedPayload)"
        }
        guard first >= 1, first <= maxSequence else {
            return "first sequence \(first) is outside 1...\(maxSequence)"
        }
        // first <= maxSequence, so maxSequence - first + 1 cannot overflow.
        guard UInt64(count) <= maxSequence - first + 1 else {
            return "\(count) records from sequence \(first) run past \(maxSequence)"
        }
        if flags & flagLZ4 != 0 {
            guard stored < uncompressed else {
                return "LZ4 payload of \(stored) bytes is not smaller than its \(uncompressed) uncompressed bytes"
            }
            guard UInt64(uncompressed) <= UInt64(stored) * lz4MaxExpansion else {
                return "\(stored) LZ4 bytes cannot expand to \(uncompressed) bytes"
            }
        } else {
            guard stored == uncompressed else {
                return "raw payload of \(stored) bytes but an uncompressed length of \(uncompressed)"
            }
        }
        return nil
    }

    /// The offset of the first frame at or after `start` whose checksum verifies, if any. Used to tell a torn tail
    /// (nothing valid follows the damage) from corruption in the middle of the log (valid data follows it).
    static func nextValidFrame(_ bytes: [UInt8], from start: Int) -> Int? {
        let magicHigh0 = UInt8(truncatingIfNeeded: blockMagic >> 16)
        let magicHigh1 = UInt8(truncatingIfNeeded: blockMagic >> 24)
        var offset = start
        while offset + frameOverhead <= bytes.count {
            if bytes[offset + 2] == magicHigh0, bytes[offset + 3] == magicHigh1,
                case .valid = checkFrame(bytes, at: offset)
            {
                return offset
            }
            offset += 1
        }
        return nil
    }

    /// Decompresses a verified frame's payload and splits it into records.
    static func decodeRecords(
        _ header: FrameHeader, _ bytes: [UInt8], payload: Range<Int>, path: String,
        offset: Int
    ) throws(StorageError) -> [[UInt8]] {
        let raw: [UInt8]
        do {
            raw =
                header.flags & flagLZ4 != 0
                ? try LZ4Codec.decompress(bytes[payload], uncompressedCount: header.uncompressedLength)
                : Array(bytes[payload])
        } catch {
            throw StorageError.corruption("block payload: \(error.message)", path: path, offset: Int64(offset))
        }
        // `checkFrame` bounds the count by the uncompressed length; checked again here against the bytes really
        // there (every record takes at least one byte), so no count reserves more than the payload can hold.
        guard header.recordCount >= 0, header.recordCount <= raw.count else {
            throw StorageError.corruption(
                "block claims \(header.recordCount) records in \(raw.count) payload bytes", path: path,
                offset: Int64(offset))
        }
        var r = BinaryReader(raw)
        var records: [[UInt8]] = []
        records.reserveCapacity(header.recordCount)
        do {
            for _ in 0..<header.recordCount { records.append(try r.bytes()) }
            try r.expectEnd()
        } catch {
            throw StorageError.corruption("block records: \(error)", path: path, offset: Int64(offset))
        }
        return records
    }

    /// Appends one block frame holding `records` (consecutive sequence numbers from `firstSequence`).
    static func appendBlock(
        _ records: ArraySlice<[UInt8]>, firstSequence: UInt64, to out: inout BinaryWriter,
        scratch: inout BinaryWriter
    ) throws(StorageError) {
        scratch.removeAll()
        for record in records { scratch.bytes(record) }
        let compressed = try LZ4Codec.compress(scratch.bytes)
        let useLZ4 = compressed.count < scratch.count
        let start = out.count
        out.u32(blockMagic | (useLZ4 ? flagLZ4 : 0))
        out.u32(UInt32(useLZ4 ? compressed.count : scratch.count))
        out.u32(UInt32(scratch.count))
        out.u32(UInt32(records.count))
        out.u64(firstSequence)
        if useLZ4 { out.raw(compressed) } else { out.raw(scratch.bytes) }
        let crc = out.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        out.u32(crc)
    }

    static func zeroPadded(_ value: UInt64, width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
