import Testing

@testable import RefundStorage

@Suite("CRC32C and LZ4")
struct ChecksumCompressionTests {
    @Test("CRC32C known vectors (RFC 3720 B.4 and the check value)")
    func vectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test("slicing-by-8 matches a bitwise CRC at every length and alignment, incremental matches one-shot")
    func matchesReference() {
        func reference(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return ~crc
        }
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 197 &+ 11) }
        for start in 0..<9 {
            for end in stride(from: start, through: data.count, by: 7) {
                #expect(CRC32C.checksum(data[start..<end]) == reference(data[start..<end]))
            }
        }
        var incremental = CRC32C()
        incremental.update(data[0..<13])
        incremental.update(data[13..<200])
        incremental.update(Array(data[200...]))
        #expect(incremental.value == CRC32C.checksum(data))
    }

    @Test("LZ4 round-trips compressible, incompressible and empty data")
    func lz4RoundTrip() throws {
        let compressible = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 / 100) }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let random = (0..<10_000).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for input in [compressible, random, [], [42]] {
            let compressed = try LZ4Codec.compress(input)
            #expect(try LZ4Codec.decompress(compressed, uncompressedCount: input.count) == input)
        }
        #expect(try LZ4Codec.compress(compressible).count < compressible.count / 10)
    }

    @Test("LZ4 rejects corrupt input and wrong lengths with a typed error")
    func lz4Corrupt() throws {
        let input = (0..<5_000).map { UInt8(truncatingIfNeeded: $0 % 13) }
        let compressed = try LZ4Codec.compress(input)
        #expect(throws: StorageError.self) {
            try LZ4Codec.decompress(compressed, uncompressedCount: input.count - 1)
        }
        #expect(throws: StorageError.self) {
            try LZ4Codec.decompress(compressed, uncompressedCount: input.count + 1)
        }
        #expect(throws: StorageError.self) {
            try LZ4Codec.decompress(Array(compressed.prefix(compressed.count / 2)), uncompressedCount: input.count)
        }
        let garbage: [UInt8] = [0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x02]
        do {
            _ = try LZ4Codec.decompress(garbage, uncompressedCount: 100)
            Issue.record("garbage decompressed")
        } catch {
            #expect(error.code == .compression)
        }
        #expect(throws: StorageError.self) { try LZ4Codec.decompress([1, 2], uncompressedCount: 0) }
    }
}
