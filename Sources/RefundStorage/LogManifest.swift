import RefundCore

/// The small, fsynced list of the segments a log directory must hold (`wal.manifest`), so recovery can tell a
/// log that is short because files were lost (a deleted first or last segment) from one that is merely new.
///
/// Layout (little-endian):
///
///     "RFMAN" | version u16 = 1 | segment count u32 | (segment number u64, first sequence u64)* | CRC32C u32
///
/// Rewritten whole, crash-atomically (temp file, fsync, rename, fsync the directory), whenever the set of
/// segments changes: when a log is created or recovered, when a segment rolls (before any block in the new
/// segment is acknowledged), and before segments are removed after a snapshot. A crash between creating a
/// segment and listing it leaves an unlisted segment *after* the listed ones, which recovery accepts (it is the
/// newest); a crash between unlisting segments and removing them leaves unlisted older files, which are
/// removed. A listed segment that is missing is data loss, and recovery refuses it.
public struct LogManifest: Sendable, Equatable {
    public static let fileName = "wal.manifest"
    public static let magic: [UInt8] = Array("RFMAN".utf8)
    public static let version: UInt16 = 1
    /// More segments than this in one manifest is not a real log (64 MiB segments: 4 PiB).
    static let maxSegments = 1 << 26

    public struct Entry: Sendable, Equatable {
        public var number: UInt64
        public var firstSequence: UInt64

        public init(number: UInt64, firstSequence: UInt64) {
            self.number = number
            self.firstSequence = firstSequence
        }

        public var fileName: String { SegmentFormat.fileName(segment: number) }
    }

    public var segments: [Entry]

    public init(segments: [Entry]) { self.segments = segments }

    public func encode() -> [UInt8] {
        var w = BinaryWriter(capacity: 16 + segments.count * 16)
        w.raw(Self.magic)
        w.u16(Self.version)
        w.u32(UInt32(truncatingIfNeeded: segments.count))
        for entry in segments {
            w.u64(entry.number)
            w.u64(entry.firstSequence)
        }
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(StorageError) -> LogManifest {
        guard bytes.count >= 15 else { throw StorageError.corruption("manifest is short", path: path, offset: 0) }
        let body = bytes[0..<(bytes.count - 4)]
        var trailer = BinaryReader(bytes[(bytes.count - 4)...])
        guard let expected = try? trailer.u32(), CRC32C.checksum(body) == expected else {
            throw StorageError.corruption("manifest checksum mismatch", path: path, offset: Int64(bytes.count - 4))
        }
        var r = BinaryReader(body)
        do {
            guard Array(try r.raw(count: magic.count)) == magic else {
                throw StorageError.corruption("bad manifest magic", path: path, offset: 0)
            }
            let v = try r.u16()
            guard v == version else { throw StorageError.corruption("unsupported manifest version \(v)", path: path, offset: 5) }
            let count = Int(try r.u32())
            guard count <= maxSegments, count * 16 == r.remaining else {
                throw StorageError.corruption("manifest segment count does not match its length", path: path, offset: 7)
            }
            var segments: [Entry] = []
            segments.reserveCapacity(count)
            for _ in 0..<count { segments.append(Entry(number: try r.u64(), firstSequence: try r.u64())) }
            return LogManifest(segments: segments)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.corruption("manifest: \(error)", path: path, offset: 0)
        }
    }

    /// Reads `directory`'s manifest; nil when there is none.
    public static func read(directory: String, fileSystem: any StorageFileSystem) throws(StorageError) -> LogManifest? {
        let path = storagePath(directory, fileName)
        guard fileSystem.fileExists(path) else { return nil }
        return try decode(try fileSystem.readFile(path), path: path)
    }

    /// Replaces `directory`'s manifest crash-atomically.
    public func write(directory: String, fileSystem: any StorageFileSystem) throws(StorageError) {
        try fileSystem.replaceAtomically(storagePath(directory, Self.fileName), with: encode())
    }
}
