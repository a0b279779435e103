import Foundation
import RefundCore
import Testing

@testable import RefundStorage

/// Files whose checksums verify but whose numbers are impossible must be reported as corruption, never crash the
/// process (issue 14, defect 11). Each test writes the crafted bytes with a correct CRC-32C, so nothing but the
/// bounds on the numbers stands between them and the reader's arithmetic and allocations.
@Suite("Numbers read from disk are bounded")
struct DiskNumberBoundsTests {
    /// One block frame with the given header fields and a correct checksum over header and payload.
    static func frame(
        flags: UInt32 = 0, payload: [UInt8], uncompressed: UInt32? = nil, count: UInt32, first: UInt64
    ) -> [UInt8] {
        var w = BinaryWriter(capacity: SegmentFormat.frameOverhead + payload.count)
        w.u32(SegmentFormat.blockMagic | flags)
        w.u32(UInt32(payload.count))
        w.u32(uncompressed ?? UInt32(payload.count))
        w.u32(count)
        w.u64(first)
        w.raw(payload)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// A well-formed block of records (raw payload), as the writer frames it.
    static func goodBlock(_ records: [[UInt8]], first: UInt64) throws -> [UInt8] {
        var out = BinaryWriter(capacity: 64)
        var scratch = BinaryWriter(capacity: 64)
        try SegmentFormat.appendBlock(records[...], firstSequence: first, to: &out, scratch: &scratch)
        return out.bytes
    }

    static func segment(number: UInt64 = 1, first: UInt64, _ frames: [UInt8]...) -> [UInt8] {
        SegmentFormat.encodeHeader(.init(segmentNumber: number, firstSequence: first)) + frames.flatMap { $0 }
    }

    /// Writes segment files into `directory`; returns their paths.
    @discardableResult
    static func write(_ segments: [[UInt8]], into directory: String) throws -> [String] {
        try segments.enumerated().map { index, bytes in
            let path = storagePath(directory, SegmentFormat.fileName(segment: UInt64(index + 1)))
            try writeBytes(path, bytes)
            return path
        }
    }

    /// Recovery, reading and opening the log all report `.corruption` naming `path` at `offset`.
    static func expectCorruption(_ directory: String, path: String, offset: Int64) async throws {
        let reader = LogReader(directory: directory)
        let recovered = await storageError { _ = try reader.recover() }
        #expect(recovered?.code == .corruption)
        #expect(recovered?.path == path)
        #expect(recovered?.offset == offset)
        let read = await storageError { _ = try reader.readAll() }
        #expect(read?.code == .corruption)
        #expect(read?.path == path)
        let opened = await storageError { _ = try WriteAheadLog(directory: directory, fsync: .never) }
        #expect(opened?.code == .corruption)
    }

    @Test("a segment and block starting at sequence UInt64.max are corruption, not an overflow")
    func sequenceAtUInt64Max() async throws {
        try await withTemporaryDirectory { dir in
            // Before the bounds: `firstSequence + recordCount` trapped in LogReader.scan and in the iterator.
            let block = Self.frame(payload: [1, 0x41], count: 1, first: .max)
            // A valid block after it, so no reading of the rules can take the damage for a torn write.
            let trailer = try Self.goodBlock([[0x42]], first: 1)
            let paths = try Self.write([Self.segment(first: .max, block, trailer)], into: dir)
            try await Self.expectCorruption(dir, path: paths[0], offset: 0)
        }
        try await withTemporaryDirectory { dir in
            // A header in range, and a block whose last sequence runs past the bound: the block is the problem.
            let first = SegmentFormat.maxSequence
            let block = Self.frame(payload: [1, 0x41, 1, 0x42], count: 2, first: first)
            let trailer = try Self.goodBlock([[0x43]], first: first)
            let paths = try Self.write([Self.segment(first: first, block, trailer)], into: dir)
            try await Self.expectCorruption(dir, path: paths[0], offset: Int64(SegmentFormat.headerSize))
        }
        let bytes = Self.segment(first: 1, Self.frame(payload: [1, 0x41], count: 1, first: .max))
        guard case .invalid(let reason) = SegmentFormat.checkFrame(bytes, at: SegmentFormat.headerSize) else {
            Issue.record("a block at UInt64.max passed the frame check")
            return
        }
        #expect(reason.contains("first sequence"))
    }

    @Test("a block claiming 0xFFFFFFFF records is corruption, not a 34 GB allocation")
    func hugeRecordCount() async throws {
        try await withTemporaryDirectory { dir in
            // Before the bounds: decodeRecords reserved room for 4 billion records from a 2-byte payload.
            let block = Self.frame(payload: [1, 0x41], count: 0xFFFF_FFFF, first: 1)
            // A valid block after it, so no reading of the rules can take the bad one for a torn write.
            let trailer = try Self.goodBlock([[0x42]], first: 1)
            let paths = try Self.write([Self.segment(first: 1, block, trailer)], into: dir)
            try await Self.expectCorruption(dir, path: paths[0], offset: Int64(SegmentFormat.headerSize))
        }
        let bytes = Self.segment(first: 1, Self.frame(payload: [1, 0x41], count: 0xFFFF_FFFF, first: 1))
        guard case .invalid(let reason) = SegmentFormat.checkFrame(bytes, at: SegmentFormat.headerSize) else {
            Issue.record("a block of 0xFFFFFFFF records in 2 bytes passed the frame check")
            return
        }
        #expect(reason.contains("record count"))
        // An LZ4 block that claims more uncompressed bytes than LZ4 can produce from what is stored.
        let lz4 = Self.segment(
            first: 1, Self.frame(flags: SegmentFormat.flagLZ4, payload: [0x10], uncompressed: 1 << 20, count: 1, first: 1))
        guard case .invalid = SegmentFormat.checkFrame(lz4, at: SegmentFormat.headerSize) else {
            Issue.record("1 LZ4 byte claiming 1 MiB passed the frame check")
            return
        }
    }

    @Test("a segment header whose first sequence is 0 is corruption, not an underflow")
    func firstSequenceZero() async throws {
        try await withTemporaryDirectory { dir in
            // Before the bounds: two empty segments starting at 0 recovered to nextSequence 0, and opening the log
            // trapped on `nextSequence - 1`.
            let paths = try Self.write(
                [Self.segment(number: 1, first: 0), Self.segment(number: 2, first: 0)], into: dir)
            try await Self.expectCorruption(dir, path: paths[0], offset: 0)
        }
        let (header, problem) = SegmentFormat.decodeHeader(SegmentFormat.encodeHeader(.init(segmentNumber: 1, firstSequence: 0)))
        #expect(header == nil)
        #expect(problem.contains("first sequence"))
        #expect(SegmentFormat.decodeHeader(SegmentFormat.encodeHeader(.init(segmentNumber: 1, firstSequence: 1))).header != nil)
    }

    @Test("a snapshot's lengths and sequence are bounded before anything is allocated")
    func snapshotBounds() throws {
        /// A snapshot file with the given header fields and a correct checksum.
        func snapshot(sequence: UInt64, flags: UInt32, uncompressed: UInt64, stored: [UInt8]) -> [UInt8] {
            var w = BinaryWriter(capacity: 64)
            w.raw(SnapshotStore.magic)
            w.u16(SnapshotStore.version)
            w.u64(sequence)
            w.u32(flags)
            w.u64(uncompressed)
            w.u64(UInt64(stored.count))
            w.raw(stored)
            w.u32(CRC32C.checksum(w.bytes))
            return w.bytes
        }
        let cases: [(String, [UInt8])] = [
            ("sequence UInt64.max", snapshot(sequence: .max, flags: 0, uncompressed: 1, stored: [7])),
            ("2 GB from 1 LZ4 byte", snapshot(sequence: 5, flags: 1, uncompressed: 0x7E00_0000, stored: [0x10])),
            ("UInt64.max uncompressed", snapshot(sequence: 5, flags: 1, uncompressed: .max, stored: [0x10])),
            ("LZ4 not smaller", snapshot(sequence: 5, flags: 1, uncompressed: 1, stored: [0x10, 0x41])),
            ("raw length mismatch", snapshot(sequence: 5, flags: 0, uncompressed: 3, stored: [1])),
        ]
        for (name, bytes) in cases {
            do {
                _ = try SnapshotStore.decode(bytes, path: "crafted")
                Issue.record("\(name): decoded")
            } catch {
                #expect(error.code == .corruption, "\(name)")
            }
        }
        let good = try SnapshotStore.encode(Snapshot(sequence: SegmentFormat.maxSequence, payload: [1, 2, 3]))
        #expect(try SnapshotStore.decode(good, path: "good").sequence == SegmentFormat.maxSequence)
    }
}
