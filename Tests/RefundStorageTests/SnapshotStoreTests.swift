import Foundation
import Testing

@testable import RefundStorage

@Suite("Snapshot store")
struct SnapshotStoreTests {
    @Test("write, read back, and keep only the newest two")
    func writeRead() async throws {
        try await withTemporaryDirectory { dir in
            let store = try SnapshotStore(directory: dir)
            #expect(try store.loadNewest() == SnapshotLoadResult(snapshot: nil, skipped: []))
            let payloads = (0..<4).map { i in (0..<(10_000 + i)).map { UInt8(truncatingIfNeeded: $0 / 7 + i) } }
            for (i, payload) in payloads.enumerated() {
                let path = try store.write(payload, coveringUpTo: UInt64(100 * (i + 1)))
                #expect(path.hasSuffix("snapshot-" + String(repeating: "0", count: 17) + "\(100 * (i + 1)).snap"))
            }
            #expect(
                try store.snapshotFiles() == [
                    SnapshotStore.fileName(sequence: 400), SnapshotStore.fileName(sequence: 300),
                ])
            let loaded = try store.loadNewest()
            #expect(loaded.snapshot == Snapshot(sequence: 400, payload: payloads[3]))
            #expect(loaded.skipped.isEmpty)
            #expect(try readBytes(dir + "/" + SnapshotStore.fileName(sequence: 400)).count < 10_000, "compressed")
            try store.write([], coveringUpTo: 500)
            #expect(try store.loadNewest().snapshot == Snapshot(sequence: 500, payload: []))
        }
    }

    @Test("a corrupt newest snapshot falls back to the older one and is reported")
    func corruptFallback() async throws {
        try await withTemporaryDirectory { dir in
            let store = try SnapshotStore(directory: dir)
            try store.write(Array("older".utf8), coveringUpTo: 10)
            let newest = try store.write(Array("newer".utf8), coveringUpTo: 20)
            var bytes = try readBytes(newest)
            bytes[bytes.count / 2] ^= 0x01
            try writeBytes(newest, bytes)
            let loaded = try store.loadNewest()
            #expect(loaded.snapshot == Snapshot(sequence: 10, payload: Array("older".utf8)))
            #expect(loaded.skipped.map(\.file) == [newest])
            #expect(loaded.skipped.first?.reason.contains("checksum") == true)

            try writeBytes(newest, Array(bytes.prefix(5)))  // truncated
            #expect(try store.loadNewest().snapshot?.sequence == 10)
            try writeBytes(dir + "/" + SnapshotStore.fileName(sequence: 10), [])
            let none = try store.loadNewest()
            #expect(none.snapshot == nil)
            #expect(none.skipped.count == 2)
        }
    }

    @Test("a stale temp file is removed and a failed write leaves the old snapshots intact")
    func tempFilesAndFailures() async throws {
        try await withTemporaryDirectory { dir in
            let fs = FaultInjectingFileSystem()
            let store = try SnapshotStore(directory: dir, fileSystem: fs)
            try store.write([1, 2, 3], coveringUpTo: 5)
            try writeBytes(dir + "/" + SnapshotStore.fileName(sequence: 9) + ".tmp", [0])
            fs.failFsync()
            #expect(throws: StorageError.self) { try store.write([4], coveringUpTo: 9) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [SnapshotStore.fileName(sequence: 5)])
            #expect(try store.loadNewest().snapshot == Snapshot(sequence: 5, payload: [1, 2, 3]))
            try writeBytes(dir + "/" + SnapshotStore.fileName(sequence: 9) + ".tmp", [0])
            try store.write([4], coveringUpTo: 6)
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
                    == [SnapshotStore.fileName(sequence: 5), SnapshotStore.fileName(sequence: 6)])
        }
    }
}
