import RefundCore

/// A snapshot: an opaque payload and the last WAL sequence number it covers.
public struct Snapshot: Sendable, Equatable {
    public let sequence: UInt64
    public let payload: [UInt8]

    public init(sequence: UInt64, payload: [UInt8]) {
        self.sequence = sequence
        self.payload = payload
    }
}

/// A snapshot file that could not be used, and why.
public struct SkippedSnapshot: Sendable, Equatable {
    public let file: String
    public let reason: String
}

/// The newest usable snapshot, with the newer files that were skipped on the way to it.
public struct SnapshotLoadResult: Sendable, Equatable {
    /// Nil when there is no usable snapshot at all.
    public let snapshot: Snapshot?
    /// Newer snapshot files that failed validation (newest first). Non-empty means a fallback happened.
    public let skipped: [SkippedSnapshot]
}

/// Stores snapshots as `snapshot-<sequence, 20 digits>.snap`, keeping the newest ``retained`` of them.
///
/// File layout (all little-endian):
///
///     "RFSNAP" | version u16 | sequence u64 | flags u32 (bit 0: LZ4) | uncompressed length u64 |
///     stored length u64 | payload (stored length bytes) | CRC32C u32 of everything before it
///
/// Writing is crash-atomic: temp file, write, fsync, rename over the final name, fsync the directory. A crash
/// leaves either the old set of snapshots or the new one (plus, at worst, a stale temp file removed next time).
public struct SnapshotStore: Sendable {
    public static let magic: [UInt8] = Array("RFSNAP".utf8)
    public static let version: UInt16 = 1
    public static let headerSize = 36
    public static let filePrefix = "snapshot-"
    public static let fileSuffix = ".snap"
    public static let tempSuffix = ".tmp"

    public let directory: String
    public let fileSystem: any StorageFileSystem
    /// How many snapshots to keep (at least 1). Keeping two leaves a fallback if the newest turns out unreadable.
    public let retained: Int

    public init(directory: String, fileSystem: any StorageFileSystem = PosixFileSystem(), retained: Int = 2)
        throws(StorageError)
    {
        self.directory = directory
        self.fileSystem = fileSystem
        self.retained = Swift.max(1, retained)
        try fileSystem.createDirectory(directory)
    }

    public static func fileName(sequence: UInt64) -> String {
        filePrefix + SegmentFormat.zeroPadded(sequence, width: 20) + fileSuffix
    }

    public static func sequence(fileName name: String) -> UInt64? {
        guard name.hasPrefix(filePrefix), name.hasSuffix(fileSuffix) else { return nil }
        let digits = name.dropFirst(filePrefix.count).dropLast(fileSuffix.count)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }

    /// Encodes a snapshot file's bytes.
    public static func encode(_ snapshot: Snapshot) throws(StorageError) -> [UInt8] {
        let compressed = snapshot.payload.count <= LZ4Codec.maxInputSize ? try LZ4Codec.compress(snapshot.payload) : []
        let useLZ4 = !snapshot.payload.isEmpty && !compressed.isEmpty && compressed.count < snapshot.payload.count
        let stored = useLZ4 ? compressed : snapshot.payload
        var w = BinaryWriter(capacity: headerSize + stored.count + 4)
        w.raw(magic)
        w.u16(version)
        w.u64(snapshot.sequence)
        w.u32(useLZ4 ? 1 : 0)
        w.u64(UInt64(snapshot.payload.count))
        w.u64(UInt64(stored.count))
        w.raw(stored)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes and verifies a snapshot file's bytes.
    public static func decode(_ bytes: [UInt8], path: String) throws(StorageError) -> Snapshot {
        guard bytes.count >= headerSize + 4 else {
            throw StorageError.corruption("snapshot is short (\(bytes.count) bytes)", path: path, offset: 0)
        }
        let crcOffset = bytes.count - 4
        var trailer = BinaryReader(bytes[crcOffset...])
        let expected = (try? trailer.u32()) ?? 0
        guard CRC32C.checksum(bytes[0..<crcOffset]) == expected else {
            throw StorageError.corruption("snapshot checksum mismatch", path: path, offset: Int64(crcOffset))
        }
        var r = BinaryReader(bytes[0..<crcOffset])
        do {
            guard Array(try r.raw(count: magic.count)) == magic else {
                throw StorageError.corruption("bad snapshot magic", path: path, offset: 0)
            }
            let v = try r.u16()
            guard v == version else {
                throw StorageError.corruption("unsupported snapshot version \(v)", path: path, offset: 6)
            }
            let sequence = try r.u64()
            let flags = try r.u32()
            let uncompressed = try r.u64()
            let storedLength = try r.u64()
            // The checksum only says the writer wrote these numbers; each is bounded before it is used. The
            // sequence leaves room for `sequence + 1` (where replay starts); a raw payload is stored as is; an LZ4
            // payload is only written when smaller than the raw bytes, and cannot expand by more than LZ4's ratio
            // or past LZ4's input limit, so a few stored bytes never make the reader allocate gigabytes.
            let problem: String? =
                if sequence > SegmentFormat.maxSequence {
                    "sequence \(sequence) exceeds \(SegmentFormat.maxSequence)"
                } else if storedLength != UInt64(r.remaining) {
                    "stored length \(storedLength) but \(r.remaining) payload bytes"
                } else if flags & ~1 != 0 {
                    "unknown flags 0x\(String(flags, radix: 16))"
                } else if flags & 1 == 0 {
                    storedLength == uncompressed
                        ? nil : "raw payload of \(storedLength) bytes but an uncompressed length of \(uncompressed)"
                } else if storedLength >= uncompressed {
                    "LZ4 payload of \(storedLength) bytes is not smaller than its \(uncompressed) uncompressed bytes"
                } else if uncompressed > UInt64(LZ4Codec.maxInputSize)
                    || uncompressed / SegmentFormat.lz4MaxExpansion > storedLength
                {
                    "\(storedLength) LZ4 bytes cannot expand to \(uncompressed) bytes"
                } else {
                    nil
                }
            if let problem {
                throw StorageError.corruption("inconsistent snapshot header: \(problem)", path: path, offset: 0)
            }
            let stored = try r.raw(count: r.remaining)
            let payload =
                flags & 1 != 0
                ? try LZ4Codec.decompress(stored, uncompressedCount: Int(clamping: uncompressed)) : Array(stored)
            return Snapshot(sequence: sequence, payload: payload)
        } catch let error as StorageError {
            throw error.code == .corruption
                ? error
                : StorageError.corruption("snapshot payload: \(error.message)", path: path, offset: Int64(headerSize))
        } catch {
            throw StorageError.corruption("snapshot header: \(error)", path: path, offset: 0)
        }
    }

    /// Writes a snapshot covering everything up to `sequence`, then prunes old ones. Returns the file's path.
    @discardableResult
    public func write(_ payload: [UInt8], coveringUpTo sequence: UInt64) throws(StorageError) -> String {
        let bytes = try SnapshotStore.encode(Snapshot(sequence: sequence, payload: payload))
        let name = SnapshotStore.fileName(sequence: sequence)
        let finalPath = storagePath(directory, name)
        let tempPath = finalPath + SnapshotStore.tempSuffix
        if fileSystem.fileExists(tempPath) { try fileSystem.remove(tempPath) }
        let handle = try fileSystem.createForAppend(tempPath)
        do {
            try fileSystem.write(handle, bytes)
            try fileSystem.fsync(handle)
        } catch {
            try? fileSystem.close(handle)
            try? fileSystem.remove(tempPath)
            throw error
        }
        try fileSystem.close(handle)
        try fileSystem.rename(from: tempPath, to: finalPath)
        try fileSystem.fsyncDirectory(directory)
        try prune()
        return finalPath
    }

    /// Snapshot file names, newest first.
    public func snapshotFiles() throws(StorageError) -> [String] {
        try fileSystem.listDirectory(directory)
            .compactMap { name in SnapshotStore.sequence(fileName: name).map { (name, $0) } }
            .sorted { $0.1 > $1.1 }
            .map(\.0)
    }

    /// The sequence numbers of the snapshots kept, newest first.
    public func sequences() throws(StorageError) -> [UInt64] {
        try snapshotFiles().compactMap { SnapshotStore.sequence(fileName: $0) }
    }

    /// Renames snapshot files that failed validation to `<name>.corrupt`: kept for inspection, no longer counted
    /// as one of the ``retained`` snapshots, so pruning can never delete the last good one in their favour.
    public func quarantine(_ skipped: [SkippedSnapshot]) throws(StorageError) {
        guard !skipped.isEmpty else { return }
        for entry in skipped where fileSystem.fileExists(entry.file) {
            let target = entry.file + SnapshotStore.corruptSuffix
            if fileSystem.fileExists(target) { try fileSystem.remove(target) }
            try fileSystem.rename(from: entry.file, to: target)
        }
        try fileSystem.fsyncDirectory(directory)
    }

    public static let corruptSuffix = ".corrupt"

    /// Removes all but the newest ``retained`` snapshots, and stale temp files.
    public func prune() throws(StorageError) {
        var removed = false
        for name in try snapshotFiles().dropFirst(retained) {
            try fileSystem.remove(storagePath(directory, name))
            removed = true
        }
        for name in try fileSystem.listDirectory(directory)
        where name.hasPrefix(SnapshotStore.filePrefix)
            && name.hasSuffix(SnapshotStore.fileSuffix + SnapshotStore.tempSuffix)
        {
            try fileSystem.remove(storagePath(directory, name))
            removed = true
        }
        if removed { try fileSystem.fsyncDirectory(directory) }
    }

    /// The newest snapshot that verifies, falling back past corrupt newer ones (reported in `skipped`).
    public func loadNewest() throws(StorageError) -> SnapshotLoadResult {
        var skipped: [SkippedSnapshot] = []
        for name in try snapshotFiles() {
            let path = storagePath(directory, name)
            do {
                let snapshot = try SnapshotStore.decode(try fileSystem.readFile(path), path: path)
                guard snapshot.sequence == SnapshotStore.sequence(fileName: name) else {
                    skipped.append(SkippedSnapshot(file: path, reason: "sequence in file does not match its name"))
                    continue
                }
                return SnapshotLoadResult(snapshot: snapshot, skipped: skipped)
            } catch  where error.code == .corruption {
                skipped.append(SkippedSnapshot(file: path, reason: error.message))
            }
        }
        return SnapshotLoadResult(snapshot: nil, skipped: skipped)
    }
}
