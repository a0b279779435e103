import RefundCore
import Testing

@Suite("Binary codec")
struct BinaryCodecTests {
    @Test("every value round-trips")
    func roundTrip() throws {
        var w = BinaryWriter()
        w.u8(0xAB)
        w.u16(0xBEEF)
        w.u32(0xDEAD_BEEF)
        w.u64(0x0123_4567_89AB_CDEF)
        w.i64(-42)
        w.uvarint(300)
        w.svarint(-300)
        w.bool(true)
        w.bool(false)
        w.string("héllo, 世界 👋")
        w.string("")
        w.bytes([1, 2, 3])
        w.bytes([])
        w.optionalString(nil)
        w.optionalString("x")
        var r = BinaryReader(w.bytes)
        #expect(try r.u8() == 0xAB)
        #expect(try r.u16() == 0xBEEF)
        #expect(try r.u32() == 0xDEAD_BEEF)
        #expect(try r.u64() == 0x0123_4567_89AB_CDEF)
        #expect(try r.i64() == -42)
        #expect(try r.uvarint() == 300)
        #expect(try r.svarint() == -300)
        #expect(try r.bool() == true)
        #expect(try r.bool() == false)
        #expect(try r.string() == "héllo, 世界 👋")
        #expect(try r.string() == "")
        #expect(try r.bytes() == [1, 2, 3])
        #expect(try r.bytes() == [])
        #expect(try r.optionalString() == nil)
        #expect(try r.optionalString() == "x")
        #expect(r.isAtEnd)
        try r.expectEnd()
    }

    @Test("fixed-width integers are little-endian")
    func littleEndian() {
        var w = BinaryWriter()
        w.u16(0x0102)
        w.u32(0x0304_0506)
        w.u64(0x0708_090A_0B0C_0D0E)
        #expect(w.bytes == [0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07])
    }

    @Test(
        "uvarint edge cases",
        arguments: [
            (UInt64(0), [UInt8(0x00)]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (300, [0xAC, 0x02]),
            (16383, [0xFF, 0x7F]), (16384, [0x80, 0x80, 0x01]),
            (UInt64(UInt32.max), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
            (UInt64.max, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ] as [(UInt64, [UInt8])])
    func uvarintEdges(value: UInt64, encoded: [UInt8]) throws {
        var w = BinaryWriter()
        w.uvarint(value)
        #expect(w.bytes == encoded)
        var r = BinaryReader(encoded)
        #expect(try r.uvarint() == value)
        #expect(r.isAtEnd)
    }

    @Test(
        "svarint zigzag edge cases",
        arguments: [
            (Int64(0), [UInt8(0x00)]), (-1, [0x01]), (1, [0x02]), (-64, [0x7F]), (64, [0x80, 0x01]),
            (Int64.max, [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            (Int64.min, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ] as [(Int64, [UInt8])])
    func svarintEdges(value: Int64, encoded: [UInt8]) throws {
        var w = BinaryWriter()
        w.svarint(value)
        #expect(w.bytes == encoded)
        var r = BinaryReader(encoded)
        #expect(try r.svarint() == value)
    }

    @Test("many varints round-trip")
    func varintSweep() throws {
        var values: [UInt64] = []
        for shift in 0..<64 {
            let p = UInt64(1) << UInt64(shift)
            values += [p - 1, p, p + 1]
        }
        var w = BinaryWriter()
        for v in values {
            w.uvarint(v)
            w.svarint(Int64(bitPattern: v))
            w.svarint(-Int64(bitPattern: v >> 1))
        }
        var r = BinaryReader(w.bytes)
        for v in values {
            #expect(try r.uvarint() == v)
            #expect(try r.svarint() == Int64(bitPattern: v))
            #expect(try r.svarint() == -Int64(bitPattern: v >> 1))
        }
        #expect(r.isAtEnd)
    }

    @Test("every truncation of an encoding throws, at the offset of the cut value")
    func truncation() throws {
        var w = BinaryWriter()
        w.u32(7)
        w.uvarint(1 << 40)
        w.string("refund")
        w.u64(9)
        let full = w.bytes
        let valueStarts = [0, 4, 10, 17]  // u32 | 6-byte varint | 1+6 string | u64
        for cut in 0..<full.count {
            var r = BinaryReader(full[0..<cut])
            var thrown: BinaryDecodingError?
            do {
                _ = try r.u32()
                _ = try r.uvarint()
                _ = try r.string()
                _ = try r.u64()
            } catch {
                thrown = error
            }
            let expectedOffset = valueStarts.last { $0 <= cut } ?? 0
            #expect(thrown?.offset == expectedOffset, "cut at \(cut)")
        }
    }

    @Test("overlong, overflowing and non-minimal varints are rejected")
    func badVarints() throws {
        let overlong = [UInt8](repeating: 0x80, count: 10) + [0x01]
        var r1 = BinaryReader(overlong)
        #expect(throws: BinaryDecodingError.self) { try r1.uvarint() }
        var r2 = BinaryReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02])
        #expect(throws: BinaryDecodingError(message: "varint overflows 64 bits", offset: 0)) { try r2.uvarint() }
        var r3 = BinaryReader([0x05, 0x80, 0x00])
        #expect(try r3.u8() == 5)
        #expect(throws: BinaryDecodingError(message: "non-minimal varint encoding", offset: 1)) { try r3.uvarint() }
        var r4 = BinaryReader([0x80])
        #expect(throws: BinaryDecodingError(message: "truncated varint", offset: 0)) { try r4.uvarint() }
    }

    @Test("invalid UTF-8, bad bools and oversized lengths are rejected without advancing")
    func invalidContent() throws {
        var r1 = BinaryReader([0x02, 0xC3, 0x28])
        #expect(throws: BinaryDecodingError(message: "invalid UTF-8 in string", offset: 0)) { try r1.string() }
        #expect(r1.offset == 0)
        var r2 = BinaryReader([0x02])
        #expect(throws: BinaryDecodingError.self) { try r2.bool() }
        #expect(r2.offset == 0)
        var r3 = BinaryReader([0x05, 0x61])
        #expect(throws: BinaryDecodingError.self) { try r3.bytes() }
        #expect(r3.offset == 0)
        var r4 = BinaryReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(throws: BinaryDecodingError.self) { try r4.string() }
        var r5 = BinaryReader([0x01, 0x02])
        _ = try r5.u8()
        #expect(throws: BinaryDecodingError(message: "1 unexpected trailing bytes", offset: 1)) { try r5.expectEnd() }
    }

    @Test("a reader over a slice reports offsets relative to the slice")
    func sliceOffsets() throws {
        let bytes: [UInt8] = [9, 9, 9, 0x01, 0x80]
        var r = BinaryReader(bytes[3...])
        #expect(try r.u8() == 1)
        #expect(throws: BinaryDecodingError(message: "truncated varint", offset: 1)) { try r.uvarint() }
    }

    @Test("patchU32 overwrites in place")
    func patch() {
        var w = BinaryWriter(capacity: 0)
        w.u32(0)
        w.u8(7)
        w.patchU32(0x0A0B_0C0D, at: 0)
        #expect(w.bytes == [0x0D, 0x0C, 0x0B, 0x0A, 7])
    }
}
