import Foundation
import Testing

@testable import RefundStorage

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Write-ahead log")
struct WriteAheadLogTests {
    @Test("records survive close and reopen across segment rolls")
    func reopenAcrossRolls() async throws {
        try await withTemporaryDirectory { dir in
            let all = (0..<600).map { record($0) }
            let wal = try WriteAheadLog(directory: dir, segmentBytes: 2_048)
            #expect(wal.recovery.lastSequence == nil)
            for chunk in stride(from: 0, to: all.count, by: 20) {
                let range = try wal.append(contentsOf: Array(all[chunk..<(chunk + 20)]))
                #expect(range == UInt64(chunk + 1)...UInt64(chunk + 20))
                try await wal.waitDurable(range.upperBound)
            }
            #expect(wal.durableSequence == 600)
            try wal.close()
            let segments = try segmentPaths(dir)
            #expect(segments.count > 3)
            for path in segments.dropLast() { #expect(try readBytes(path).count <= 2_048) }

            let reopened = try WriteAheadLog(directory: dir, segmentBytes: 2_048)
            #expect(reopened.recovery.tornTail == nil)
            #expect(reopened.recovery.lastSequence == 600)
            #expect(reopened.nextSequence == 601)
            let seq = try reopened.append([7, 7, 7])
            #expect(seq == 601)
            try await reopened.waitDurable(seq)
            try reopened.close()

            let records = try LogReader(directory: dir).readAll()
            #expect(records.map(\.sequence) == Array(1...601))
            #expect(records.dropLast().map(\.bytes) == all)
            #expect(records.last?.bytes == [7, 7, 7])
            let tail = try LogReader(directory: dir).readAll(from: 555)
            #expect(tail.map(\.sequence) == Array(555...601))
            #expect(try LogReader(directory: dir).readAll(from: 602).isEmpty)
        }
    }

    @Test("empty records, large records and single appends")
    func recordShapes() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try WriteAheadLog(directory: dir, fsync: .never)
            let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
            let a = try wal.append([])
            let b = try wal.append(big)
            let c = try wal.append([1])
            try await wal.waitDurable(c)
            #expect(throws: StorageError.self) {
                try wal.append([UInt8](repeating: 0, count: SegmentFormat.maxRecordBytes + 1))
            }
            try wal.close()
            let records = try LogReader(directory: dir).readAll()
            #expect(
                records == [
                    LogRecord(sequence: a, bytes: []), LogRecord(sequence: b, bytes: big),
                    LogRecord(sequence: c, bytes: [1]),
                ])
        }
    }

    @Test("cutting the last segment at every byte of its last block recovers exactly the blocks before it")
    func tornTailAtEveryOffset() async throws {
        try await withTemporaryDirectory { dir in
            let batches = (0..<4).map { b in (0..<3).map { record(b * 3 + $0) } }
            let wal = try WriteAheadLog(directory: dir, segmentBytes: 1_000)
            try await appendBatches(wal, [(100..<130).map { record($0) }])  // fills and rolls the first segment
            try await appendBatches(wal, batches)
            try wal.close()
            let path = try #require(try segmentPaths(dir).last)
            let original = try readBytes(path)
            let blocks = frameOffsets(original)
            #expect(blocks.count >= 2)
            let lastBlock = try #require(blocks.last)
            let allRecords = try LogReader(directory: dir).readAll()
            let lastBlockFirst = try #require(allRecords.last?.sequence) - 2
            let expected = Array(allRecords.prefix { $0.sequence < lastBlockFirst })

            for cut in lastBlock...original.count {
                try writeBytes(path, Array(original[0..<cut]))
                let report = try LogReader(directory: dir).recover()
                if cut == lastBlock || cut == original.count {
                    #expect(report.tornTail == nil)
                } else {
                    let torn = try #require(report.tornTail, "cut at \(cut)")
                    #expect(torn.file == path)
                    #expect(torn.offset == Int64(lastBlock))
                    #expect(torn.bytesRemoved == Int64(cut - lastBlock))
                    #expect(torn.firstLostSequence == lastBlockFirst)
                    #expect(try readBytes(path).count == lastBlock)
                }
                let records = try LogReader(directory: dir).readAll()
                #expect(records == (cut == original.count ? allRecords : expected), "cut at \(cut)")
            }

            // A torn tail is also cut when the log is reopened, and appending continues after the prefix.
            try writeBytes(path, Array(original[0..<(lastBlock + 5)]))
            let reopened = try WriteAheadLog(directory: dir, segmentBytes: 1_000)
            #expect(reopened.recovery.tornTail?.offset == Int64(lastBlock))
            #expect(reopened.nextSequence == lastBlockFirst)
            try await reopened.waitDurable(try reopened.append([9]))
            try reopened.close()
            #expect(try LogReader(directory: dir).readAll().last == LogRecord(sequence: lastBlockFirst, bytes: [9]))
        }
    }

    @Test("a torn last block followed by zero fill, and a torn segment header, are cut")
    func tornShapes() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try WriteAheadLog(directory: dir)
            try await appendBatches(wal, [[record(1)], [record(2)]])
            try wal.close()
            let path = try #require(try segmentPaths(dir).last)
            let original = try readBytes(path)
            try writeBytes(path, original + [UInt8](repeating: 0, count: 4_096))
            let report = try LogReader(directory: dir).recover()
            #expect(report.tornTail?.offset == Int64(original.count))
            #expect(report.lastSequence == 2)

            // A new segment whose header was only partly written is removed.
            let next = dir + "/" + SegmentFormat.fileName(segment: 2)
            try writeBytes(
                next, Array(SegmentFormat.encodeHeader(.init(segmentNumber: 2, firstSequence: 3)).prefix(10)))
            let report2 = try LogReader(directory: dir).recover()
            #expect(report2.tornTail?.segmentRemoved == true)
            #expect(report2.tornTail?.file == next)
            #expect(!FileManager.default.fileExists(atPath: next))
            #expect(try LogReader(directory: dir).readAll().map(\.sequence) == [1, 2])
        }
    }

    /// Writes 6 one-batch blocks into a single segment and returns (path, block offsets, block first sequences).
    private func sixBlocks(_ dir: String, segmentBytes: Int = WriteAheadLog.defaultSegmentBytes) async throws
        -> (String, [Int], [UInt64])
    {
        let wal = try WriteAheadLog(directory: dir, segmentBytes: segmentBytes)
        let ranges = try await appendBatches(wal, (0..<6).map { b in (0..<4).map { record(b * 4 + $0, length: 60) } })
        try wal.close()
        let path = try #require(try segmentPaths(dir).first)
        return (path, frameOffsets(try readBytes(path)), ranges.map(\.lowerBound))
    }

    @Test("a flipped byte in an earlier block throws an error naming the file and offset")
    func corruptionInTheMiddle() async throws {
        try await withTemporaryDirectory { dir in
            let (path, blocks, _) = try await sixBlocks(dir)
            #expect(blocks.count == 6)
            var bytes = try readBytes(path)
            let target = (blocks[2] + blocks[3]) / 2
            bytes[target] ^= 0x40
            try writeBytes(path, bytes)
            for attempt in 0..<3 {
                let error = await storageError("attempt \(attempt)") {
                    switch attempt {
                    case 0: _ = try LogReader(directory: dir).recover()
                    case 1: _ = try LogReader(directory: dir).readAll()
                    default: _ = try WriteAheadLog(directory: dir)
                    }
                }
                #expect(error?.code == .corruption)
                #expect(error?.path == path)
                #expect(error?.offset == Int64(blocks[2]))
                #expect(error?.message.contains(path) == true && error?.message.contains("\(blocks[2])") == true)
            }
            #expect(try readBytes(path) == bytes, "nothing is changed without repair")
        }
    }

    @Test("damage in any field of a middle block, including its length, is corruption, not a torn tail")
    func corruptHeaderFields() async throws {
        try await withTemporaryDirectory { dir in
            let (path, blocks, _) = try await sixBlocks(dir)
            let original = try readBytes(path)
            for fieldOffset in [0, 2, 4, 5, 8, 12, 16] {
                var bytes = original
                bytes[blocks[1] + fieldOffset] ^= 0x11
                try writeBytes(path, bytes)
                #expect(throws: StorageError.self, "field at +\(fieldOffset)") {
                    try LogReader(directory: dir).recover()
                }
            }
            // In an earlier (not last) segment, even damage at its end is corruption.
            try writeBytes(path, original)
        }
    }

    @Test("damage at the end of an earlier segment is corruption")
    func corruptionInEarlierSegment() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try WriteAheadLog(directory: dir, segmentBytes: 600)
            try await appendBatches(wal, (0..<12).map { b in (0..<3).map { record(b * 3 + $0, length: 50) } })
            try wal.close()
            let segments = try segmentPaths(dir)
            #expect(segments.count >= 3)
            var bytes = try readBytes(segments[0])
            let last = try #require(frameOffsets(bytes).last)
            bytes.removeLast(3)
            try writeBytes(segments[0], bytes)
            let error = await storageError { _ = try LogReader(directory: dir).recover() }
            #expect(error?.code == .corruption)
            #expect(error?.path == segments[0])
            #expect(error?.offset == Int64(last))
        }
    }

    @Test("repair recovers the prefix before the damage and reports exactly what was dropped")
    func repair() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try WriteAheadLog(directory: dir, segmentBytes: 700)
            try await appendBatches(wal, (0..<15).map { b in (0..<3).map { record(b * 3 + $0, length: 50) } })
            try wal.close()
            let segments = try segmentPaths(dir)
            #expect(segments.count >= 3)
            let all = try LogReader(directory: dir).readAll()
            let victim = segments[1]
            var bytes = try readBytes(victim)
            let blocks = frameOffsets(bytes)
            #expect(blocks.count >= 2)
            bytes[blocks[1] + 30] ^= 0xFF
            try writeBytes(victim, bytes)
            let laterBytes = try segments[2...].reduce(0) { $0 + (try readBytes($1)).count }
            // The sequence the damaged block starts at: the records of block 0 of the victim come before it.
            let victimFirst = try #require(SegmentFormat.decodeHeader(bytes).header?.firstSequence)
            guard case .valid(let frame0, _) = SegmentFormat.checkFrame(bytes, at: blocks[0]) else {
                Issue.record("block 0 should verify")
                return
            }
            let firstDropped = victimFirst + UInt64(frame0.recordCount)

            let reopened = try WriteAheadLog(directory: dir, segmentBytes: 700, repair: true)
            let report = try #require(reopened.recovery.repair)
            #expect(report.file == victim)
            #expect(report.offset == Int64(blocks[1]))
            #expect(report.bytesTruncated == Int64(bytes.count - blocks[1]))
            #expect(report.segmentRemoved == false)
            #expect(report.removedSegments == Array(segments[2...]))
            #expect(report.removedSegmentBytes == Int64(laterBytes))
            #expect(report.firstDroppedSequence == firstDropped)
            #expect(reopened.nextSequence == firstDropped)
            try reopened.close()
            #expect(try LogReader(directory: dir).readAll() == all.filter { $0.sequence < firstDropped })
            #expect(try segmentPaths(dir) == Array(segments[0...1]))
        }
    }

    @Test("an injected write failure fails the waiter and poisons the log")
    func writeFailure() async throws {
        try await withTemporaryDirectory { dir in
            let fs = FaultInjectingFileSystem()
            let wal = try WriteAheadLog(directory: dir, fileSystem: fs)
            try await appendBatches(wal, [[record(1)], [record(2)]])
            fs.failWrite(errno: EIO, partialBytes: 12)
            let seq = try wal.append(record(3))
            let error = await storageError { try await wal.waitDurable(seq) }
            #expect(error?.errno == EIO)
            #expect(error?.code == .io)
            #expect(wal.failure?.errno == EIO)
            #expect(throws: StorageError.self) { try wal.append(record(4)) }
            let later = await storageError { _ = try wal.append(record(4)) }
            #expect(later?.errno == EIO, "later appends fail with the original error")
            try await wal.waitDurable(2)  // already durable before the failure
            #expect(throws: StorageError.self) { try wal.close() }

            // On reopen the partly written block is a torn tail; the durable records are all there.
            let reopened = try WriteAheadLog(directory: dir)
            #expect(reopened.recovery.tornTail?.bytesRemoved == 12)
            #expect(reopened.nextSequence == 3)
            try reopened.close()
        }
    }

    @Test("an injected fsync failure fails every waiter of that flush, later appends fail, nothing is retried")
    func fsyncFailure() async throws {
        try await withTemporaryDirectory { dir in
            let fs = FaultInjectingFileSystem()
            let wal = try WriteAheadLog(directory: dir, fileSystem: fs)
            try await appendBatches(wal, [[record(1)]])
            fs.failFsync(errno: ENOSPC)
            let range = try wal.append(contentsOf: [record(2), record(3)])
            let fsyncsBefore = fs.counters.fsyncs
            await withTaskGroup(of: StorageError?.self) { group in
                for seq in range {
                    group.addTask { await storageError { try await wal.waitDurable(seq) } }
                }
                for await error in group {
                    #expect(error?.errno == ENOSPC)
                }
            }
            #expect(throws: StorageError.self) { try wal.append(record(4)) }
            await #expect(throws: StorageError.self) { try await wal.waitDurable(range.upperBound) }
            #expect(wal.durableSequence == 1)
            #expect(throws: StorageError.self) { try wal.close() }
            #expect(fs.counters.fsyncs <= fsyncsBefore + 1, "a failed fsync is never retried")
        }
    }

    @Test("group commit: concurrent appenders under .always share fsyncs")
    func groupCommit() async throws {
        try await withTemporaryDirectory { dir in
            let fs = FaultInjectingFileSystem()
            fs.setFsyncDelay(microseconds: 2_000)
            let wal = try WriteAheadLog(directory: dir, fileSystem: fs, fsync: .always)
            let before = fs.counters.fsyncs
            let appenders = 400
            let sequences = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for i in 0..<appenders {
                    group.addTask {
                        let seq = try wal.append(record(i))
                        try await wal.waitDurable(seq)
                        #expect(wal.durableSequence >= seq)
                        return seq
                    }
                }
                var all: [UInt64] = []
                for try await seq in group { all.append(seq) }
                return all
            }
            let fsyncs = fs.counters.fsyncs - before
            #expect(Set(sequences) == Set(1...UInt64(appenders)))
            #expect(fsyncs < appenders / 4, "\(fsyncs) fsyncs for \(appenders) records")
            #expect(fsyncs >= 1)
            try wal.close()
            #expect(try LogReader(directory: dir).readAll().count == appenders)
        }
    }

    @Test("interval and never policies acknowledge after the write; interval fsyncs on its timer")
    func relaxedPolicies() async throws {
        try await withTemporaryDirectory { dir in
            let fs = FaultInjectingFileSystem()
            let wal = try WriteAheadLog(
                directory: dir + "/interval", fileSystem: fs, fsync: .interval(milliseconds: 20))
            let before = fs.counters.fsyncs
            let seq = try wal.append(record(1))
            try await wal.waitDurable(seq)
            #expect(wal.durableSequence == seq)
            var waited = 0
            while wal.syncedSequence < seq, waited < 200 {
                try await Task.sleep(for: .milliseconds(10))
                waited += 1
            }
            #expect(wal.syncedSequence == seq)
            #expect(fs.counters.fsyncs >= before + 1)
            try wal.close()

            let never = try WriteAheadLog(directory: dir + "/never", fileSystem: fs, fsync: .never)
            let fsyncsBefore = fs.counters.fsyncs
            let last = try never.append(contentsOf: (0..<50).map { record($0) }).upperBound
            try await never.waitDurable(last)
            #expect(never.durableSequence == last)
            #expect(fs.counters.fsyncs == fsyncsBefore)
            try never.close()
            #expect(fs.counters.fsyncs == fsyncsBefore + 1, "close fsyncs whatever the policy")
            #expect(try LogReader(directory: dir + "/never").readAll().count == 50)
        }
    }

    @Test("waitSynced forces an fsync under .never and .interval: what gates money waits for the disk")
    func waitSyncedForcesAnFsync() async throws {
        try await withTemporaryDirectory { dir in
            for policy in [FsyncPolicy.never, .interval(milliseconds: 60_000)] {
                let fs = FaultInjectingFileSystem()
                let wal = try WriteAheadLog(directory: dir + "/\(policy)", fileSystem: fs, fsync: policy)
                let seq = try wal.append(record(1))
                try await wal.waitDurable(seq)
                #expect(wal.syncedSequence < seq, "written, not yet synced under \(policy)")
                let before = fs.counters.fsyncs
                try await wal.waitSynced(seq)
                #expect(wal.syncedSequence >= seq)
                #expect(fs.counters.fsyncs > before)
                try wal.close()
            }
        }
    }

    @Test("removeSegments drops covered segments, never the active one, and sequence numbers survive")
    func removeSegments() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try WriteAheadLog(directory: dir, segmentBytes: 600)
            try await appendBatches(wal, (0..<10).map { b in (0..<3).map { record(b * 3 + $0, length: 50) } })
            let before = wal.segmentFiles
            #expect(before.count >= 3)
            #expect(try wal.removeSegments(coveredUpTo: 0).isEmpty)
            let removed = try wal.removeSegments(coveredUpTo: 30)
            #expect(removed == Array(before.dropLast()))
            #expect(wal.segmentFiles == [before.last].compactMap { $0 })
            try wal.close()
            let reopened = try WriteAheadLog(directory: dir, segmentBytes: 600)
            #expect(reopened.nextSequence == 31)
            try reopened.close()
            let records = try LogReader(directory: dir).readAll()
            #expect(records.last?.sequence == 30)
            #expect(records.allSatisfy { $0.bytes == record(Int($0.sequence) - 1, length: 50) })

            let fresh = try WriteAheadLog(directory: dir + "/fresh", startingSequence: 1_000)
            #expect(try fresh.append([1]) == 1_000)
            try fresh.close()
        }
    }

    @Test("closed logs reject appends; unassigned sequence numbers are rejected")
    func misuse() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try WriteAheadLog(directory: dir)
            await #expect(throws: StorageError.self) { try await wal.waitDurable(1) }
            try await wal.waitDurable(0)
            #expect(throws: StorageError.self) { try wal.append(contentsOf: []) }
            try wal.close()
            try wal.close()
            let error = await storageError { _ = try wal.append([1]) }
            #expect(error?.code == .closed)
        }
    }
}
