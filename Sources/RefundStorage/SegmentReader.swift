/// One record read back from the log.
public struct LogRecord: Sendable, Equatable {
    public let sequence: UInt64
    public let bytes: [UInt8]

    public init(sequence: UInt64, bytes: [UInt8]) {
        self.sequence = sequence
        self.bytes = bytes
    }
}

/// What recovery cut off the end of the last segment: a block (or a segment header) that was being written when
/// the process or machine stopped. Its records were never acknowledged as durable under `.always`.
public struct TornTail: Sendable, Equatable {
    /// The segment file.
    public var file: String
    /// The new length of the file: the end of its last valid block (0 when the file was removed).
    public var offset: Int64
    public var bytesRemoved: Int64
    /// True when the segment header itself was torn and the whole file was removed.
    public var segmentRemoved: Bool
    /// The first sequence number that was not recovered (the torn block's, as far as it is known).
    public var firstLostSequence: UInt64
    public var reason: String
}

/// What `repair: true` dropped to get past corruption in the middle of the log.
public struct RepairReport: Sendable, Equatable {
    /// The segment in which the first bad block was found.
    public var file: String
    /// Where that segment was cut (the end of its last good block; 0 when the segment was removed).
    public var offset: Int64
    /// Bytes cut off `file` (its whole size when it was removed).
    public var bytesTruncated: Int64
    /// True when `file` was removed because its header was bad.
    public var segmentRemoved: Bool
    /// Later segments that were removed, in order.
    public var removedSegments: [String]
    public var removedSegmentBytes: Int64
    /// The first sequence number that is no longer in the log (0 when it cannot be known).
    public var firstDroppedSequence: UInt64
    public var reason: String

    public var totalBytesDropped: Int64 { bytesTruncated + removedSegmentBytes }
}

/// The result of recovery: what the log now holds and what, if anything, was cut.
public struct RecoveryReport: Sendable, Equatable {
    /// The segment file names left, oldest first.
    public var segments: [String]
    /// The sequence number of the first record the log can hold (its first segment's first sequence).
    public var firstSequence: UInt64
    /// The sequence number the next appended record gets.
    public var nextSequence: UInt64
    /// The number to give the next segment file.
    public var nextSegmentNumber: UInt64
    public var tornTail: TornTail?
    public var repair: RepairReport?
    /// Segments the manifest lists that were gone, given up by a repair (empty without repair: that refuses).
    public var missingSegments: [String] = []
    /// Segments removed because the log ended below what the snapshot covers (all their records are in it).
    public var obsoleteSegments: [String] = []

    /// The last sequence number in the log, or nil when it holds no record.
    public var lastSequence: UInt64? { nextSequence > firstSequence ? nextSequence - 1 : nil }
}

/// Reads a WAL directory: recovery (validate every block, cut a torn tail, optionally repair) and iteration over
/// records. Reading never changes files; only `recover` does.
public struct LogReader: Sendable {
    public let directory: String
    public let fileSystem: any StorageFileSystem

    public init(directory: String, fileSystem: any StorageFileSystem = PosixFileSystem()) {
        self.directory = directory
        self.fileSystem = fileSystem
    }

    struct SegmentEntry: Sendable {
        var number: UInt64
        var name: String
        var path: String
    }

    func segments() throws(StorageError) -> [SegmentEntry] {
        try fileSystem.listDirectory(directory)
            .compactMap { name in
                SegmentFormat.segmentNumber(fileName: name).map {
                    SegmentEntry(number: $0, name: name, path: storagePath(directory, name))
                }
            }
            .sorted { $0.number < $1.number }
    }

    /// The first sequence number of the oldest segment (from its header; nil when there is none or it is
    /// unreadable). Reads one header; changes nothing.
    public func recoveryFirstSequence() throws(StorageError) -> UInt64? {
        guard let first = try segments().first else { return nil }
        return SegmentFormat.decodeHeader(try fileSystem.readPrefix(first.path, count: SegmentFormat.headerSize)).header?
            .firstSequence
    }

    /// The segment file names, oldest first.
    public func segmentFiles() throws(StorageError) -> [String] {
        try segments().map(\.name)
    }

    // MARK: Recovery

    struct Failure {
        var offset: Int
        var reason: String
        /// Damage with no valid frame after it (a torn write, if it is in the last segment).
        var tornShape: Bool
    }

    struct SegmentScan {
        var header: SegmentFormat.SegmentHeader?
        var validEnd: Int
        var nextSequence: UInt64?
        var failure: Failure?
    }

    /// Validates every frame of one segment (checksums, sequence continuity) without decompressing anything.
    static func scan(_ bytes: [UInt8], expectedFirst: UInt64?) -> SegmentScan {
        let (decoded, problem) = SegmentFormat.decodeHeader(bytes)
        guard let header = decoded else {
            let tornShape = LogReader.isTornTail(bytes, at: 0, cutShort: bytes.count < SegmentFormat.headerSize)
            return SegmentScan(
                header: nil, validEnd: 0, nextSequence: expectedFirst,
                failure: Failure(offset: 0, reason: problem, tornShape: tornShape))
        }
        var scan = SegmentScan(header: header, validEnd: SegmentFormat.headerSize, nextSequence: header.firstSequence)
        if let expectedFirst, expectedFirst != header.firstSequence {
            scan.nextSequence = expectedFirst
            scan.failure = Failure(
                offset: 0,
                reason: "segment starts at sequence \(header.firstSequence), expected \(expectedFirst)",
                tornShape: false)
            return scan
        }
        var next = header.firstSequence
        var offset = SegmentFormat.headerSize
        while offset < bytes.count {
            switch SegmentFormat.checkFrame(bytes, at: offset) {
            case .valid(let frame, let payload):
                guard frame.firstSequence == next else {
                    scan.failure = Failure(
                        offset: offset,
                        reason: "block starts at sequence \(frame.firstSequence), expected \(next)", tornShape: false)
                    scan.nextSequence = next
                    return scan
                }
                next = frame.firstSequence + UInt64(frame.recordCount)
                offset = payload.upperBound + SegmentFormat.frameTrailerSize
                scan.validEnd = offset
            case .truncated(let reason):
                let tornShape = LogReader.isTornTail(bytes, at: offset, cutShort: true)
                scan.failure = Failure(offset: offset, reason: reason, tornShape: tornShape)
                scan.nextSequence = next
                return scan
            case .invalid(let reason):
                let tornShape = LogReader.isTornTail(bytes, at: offset, cutShort: false)
                scan.failure = Failure(
                    offset: offset,
                    reason: tornShape ? reason : "\(reason) (a complete block that fails its checksum is corruption, not a torn write)",
                    tornShape: tornShape)
                scan.nextSequence = next
                return scan
            }
        }
        scan.nextSequence = next
        return scan
    }

    /// Whether damage at `offset` has the shape a crash mid-write leaves, and only that shape: nothing that
    /// verifies follows it, and either the block is cut short (its header or its stated length runs past the end
    /// of the file: a write that stopped part-way is a prefix of the block) or the rest of the file is zeroes (a
    /// file extended but never written). A complete block whose checksum fails, or bytes that are neither, are
    /// corruption: a crash cannot produce them, so acknowledged records may be in them.
    static func isTornTail(_ bytes: [UInt8], at offset: Int, cutShort: Bool) -> Bool {
        guard SegmentFormat.nextValidFrame(bytes, from: offset + 1) == nil else { return false }
        if cutShort { return !isCompleteBlockWithDamagedLength(bytes, at: offset) }
        return bytes[min(offset, bytes.count)...].allSatisfy { $0 == 0 }
    }

    /// Whether a block that looks cut short is in fact complete, with damage in its stored-length field: with
    /// the length set to what the file holds, its checksum verifies. A write cut part-way never ends with the
    /// checksum of its own bytes, so this is corruption (a flipped bit in the length), not a torn write.
    static func isCompleteBlockWithDamagedLength(_ bytes: [UInt8], at offset: Int) -> Bool {
        let available = bytes.count - offset
        guard offset >= 0, available >= SegmentFormat.frameOverhead else { return false }
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        guard u32(offset) & SegmentFormat.blockMagicMask == SegmentFormat.blockMagic else { return false }
        var header = Array(bytes[offset..<(offset + SegmentFormat.frameHeaderSize)])
        let stored = UInt32(truncatingIfNeeded: available - SegmentFormat.frameOverhead)
        for i in 0..<4 { header[4 + i] = UInt8(truncatingIfNeeded: stored >> (8 * UInt32(i))) }
        var crc = CRC32C()
        crc.update(header)
        crc.update(bytes[(offset + SegmentFormat.frameHeaderSize)..<(bytes.count - SegmentFormat.frameTrailerSize)])
        return crc.value == u32(bytes.count - SegmentFormat.frameTrailerSize)
    }

    /// Validates the whole log and makes it appendable again.
    ///
    /// - A torn tail (damage at the end of the last segment with no valid block after it) is cut off and reported
    ///   in `tornTail`; a last segment whose header itself is torn is removed.
    /// - Any other damage throws a `.corruption` error naming the file and byte offset, unless `repair` is true:
    ///   then the damaged segment is cut at the end of its last good block (removed if its header is bad), every
    ///   later segment is removed, and `repair` in the report says exactly what was dropped.
    public func recover(repair: Bool = false) throws(StorageError) -> RecoveryReport {
        var entries = try segments()
        var report = RecoveryReport(
            segments: [], firstSequence: 0, nextSequence: 0,
            nextSegmentNumber: (entries.last?.number ?? 0) + 1, tornTail: nil, repair: nil)
        var expected: UInt64?
        var firstSequence: UInt64?
        var changedDirectory = false
        var index = 0
        while index < entries.count {
            let entry = entries[index]
            let bytes = try fileSystem.readFile(entry.path)
            let scan = LogReader.scan(bytes, expectedFirst: expected)
            let isLast = index == entries.count - 1
            if let failure = scan.failure {
                if isLast && failure.tornShape {
                    let lost = scan.nextSequence ?? 0
                    if scan.header == nil {
                        try fileSystem.remove(entry.path)
                        changedDirectory = true
                        report.tornTail = TornTail(
                            file: entry.path, offset: 0, bytesRemoved: Int64(bytes.count), segmentRemoved: true,
                            firstLostSequence: lost, reason: failure.reason)
                        entries.removeLast()
                    } else {
                        try cut(entry.path, to: failure.offset)
                        report.tornTail = TornTail(
                            file: entry.path, offset: Int64(failure.offset),
                            bytesRemoved: Int64(bytes.count - failure.offset), segmentRemoved: false,
                            firstLostSequence: lost, reason: failure.reason)
                        expected = scan.nextSequence
                        if firstSequence == nil { firstSequence = scan.header?.firstSequence }
                    }
                    break
                }
                guard repair else {
                    throw StorageError.corruption(failure.reason, path: entry.path, offset: Int64(failure.offset))
                }
                var repairReport = RepairReport(
                    file: entry.path, offset: 0, bytesTruncated: 0, segmentRemoved: false, removedSegments: [],
                    removedSegmentBytes: 0, firstDroppedSequence: scan.nextSequence ?? 0, reason: failure.reason)
                // A segment whose header is bad or out of sequence is dropped whole: nothing in it can be trusted.
                if scan.header == nil || failure.offset == 0 {
                    try fileSystem.remove(entry.path)
                    repairReport.segmentRemoved = true
                    repairReport.bytesTruncated = Int64(bytes.count)
                    if repairReport.firstDroppedSequence == 0, let h = scan.header {
                        repairReport.firstDroppedSequence = h.firstSequence
                    }
                } else {
                    try cut(entry.path, to: failure.offset)
                    repairReport.offset = Int64(failure.offset)
                    repairReport.bytesTruncated = Int64(bytes.count - failure.offset)
                    expected = scan.nextSequence
                    if firstSequence == nil { firstSequence = scan.header?.firstSequence }
                }
                for later in entries[(index + 1)...] {
                    repairReport.removedSegmentBytes += (try? fileSystem.fileSize(later.path)) ?? 0
                    try fileSystem.remove(later.path)
                    repairReport.removedSegments.append(later.path)
                }
                changedDirectory = true
                entries.removeSubrange((repairReport.segmentRemoved ? index : index + 1)...)
                report.repair = repairReport
                break
            }
            if firstSequence == nil { firstSequence = scan.header?.firstSequence }
            expected = scan.nextSequence
            index += 1
        }
        if changedDirectory { try fileSystem.fsyncDirectory(directory) }
        report.segments = entries.map(\.name)
        report.firstSequence = firstSequence ?? expected ?? 0
        report.nextSequence = expected ?? report.firstSequence
        return report
    }

    private func cut(_ path: String, to size: Int) throws(StorageError) {
        try fileSystem.truncate(path, toSize: Int64(size))
        let handle = try fileSystem.openForAppend(path)
        defer { try? fileSystem.close(handle) }
        try fileSystem.fsync(handle)
    }

    // MARK: Reading

    /// Iterates records with sequence numbers `>= sequence`, oldest first, across segments. Stops quietly at a torn
    /// tail; throws `.corruption` (file and offset) for damage anywhere else.
    public func records(from sequence: UInt64 = 0) throws(StorageError) -> LogRecordIterator {
        LogRecordIterator(fileSystem: fileSystem, entries: try segments(), from: sequence)
    }

    /// All records with sequence numbers `>= sequence`.
    public func readAll(from sequence: UInt64 = 0) throws(StorageError) -> [LogRecord] {
        var iterator = try records(from: sequence)
        var result: [LogRecord] = []
        while let record = try iterator.next() { result.append(record) }
        return result
    }
}

/// Pulls records out of the log one at a time, reading one segment into memory at a time.
public struct LogRecordIterator: Sendable {
    let fileSystem: any StorageFileSystem
    let entries: [LogReader.SegmentEntry]
    let from: UInt64
    private var segmentIndex = -1
    private var bytes: [UInt8] = []
    private var offset = 0
    private var block: [[UInt8]] = []
    private var blockIndex = 0
    private var blockFirst: UInt64 = 0
    private var expected: UInt64?
    private var finished = false
    /// Set when reading stopped at a torn tail: the file, the offset of the damaged last block, and the bytes from
    /// there to the end (what recovery will cut at the next open). Reading never changes the file.
    public private(set) var tornTail: (file: String, offset: Int, bytes: Int)?

    init(fileSystem: any StorageFileSystem, entries: [LogReader.SegmentEntry], from: UInt64) {
        self.fileSystem = fileSystem
        self.entries = entries
        self.from = from
    }

    private var path: String { entries[segmentIndex].path }
    private var isLastSegment: Bool { segmentIndex == entries.count - 1 }

    public mutating func next() throws(StorageError) -> LogRecord? {
        while !finished {
            if blockIndex < block.count {
                let sequence = blockFirst + UInt64(blockIndex)
                let record = block[blockIndex]
                blockIndex += 1
                if sequence >= from { return LogRecord(sequence: sequence, bytes: record) }
                continue
            }
            block = []
            blockIndex = 0
            if segmentIndex < 0 || offset >= bytes.count {
                try openNextSegment()
                continue
            }
            switch SegmentFormat.checkFrame(bytes, at: offset) {
            case .valid(let frame, let payload):
                if let expected, expected != frame.firstSequence {
                    throw StorageError.corruption(
                        "block starts at sequence \(frame.firstSequence), expected \(expected)", path: path,
                        offset: Int64(offset))
                }
                if frame.lastSequence >= from {
                    block = try SegmentFormat.decodeRecords(
                        frame, bytes, payload: payload, path: path, offset: offset)
                    blockFirst = frame.firstSequence
                }
                expected = frame.firstSequence + UInt64(frame.recordCount)
                offset = payload.upperBound + SegmentFormat.frameTrailerSize
            case .truncated(let reason), .invalid(let reason):
                let cutShort: Bool
                if case .truncated = SegmentFormat.checkFrame(bytes, at: offset) { cutShort = true } else { cutShort = false }
                if isLastSegment, LogReader.isTornTail(bytes, at: offset, cutShort: cutShort) {
                    finished = true  // torn tail: recovery cuts it; readers stop before it
                    tornTail = (path, offset, bytes.count - offset)
                } else {
                    throw StorageError.corruption(reason, path: path, offset: Int64(offset))
                }
            }
        }
        return nil
    }

    private mutating func openNextSegment() throws(StorageError) {
        segmentIndex += 1
        bytes = []
        offset = 0
        // Skip whole segments that end before `from`: the next segment's first sequence bounds this one's records.
        while segmentIndex + 1 < entries.count {
            let prefix = try fileSystem.readPrefix(entries[segmentIndex + 1].path, count: SegmentFormat.headerSize)
            guard let next = SegmentFormat.decodeHeader(prefix).header, next.firstSequence <= from else { break }
            segmentIndex += 1
            expected = nil
        }
        guard segmentIndex < entries.count else {
            finished = true
            return
        }
        bytes = try fileSystem.readFile(path)
        let (decoded, problem) = SegmentFormat.decodeHeader(bytes)
        guard let header = decoded else {
            if isLastSegment, LogReader.isTornTail(bytes, at: 0, cutShort: bytes.count < SegmentFormat.headerSize) {
                finished = true
                tornTail = (path, 0, bytes.count)
                return
            }
            throw StorageError.corruption(problem, path: path, offset: 0)
        }
        if let expected, expected != header.firstSequence {
            throw StorageError.corruption(
                "segment starts at sequence \(header.firstSequence), expected \(expected)", path: path, offset: 0)
        }
        expected = header.firstSequence
        offset = SegmentFormat.headerSize
    }
}
