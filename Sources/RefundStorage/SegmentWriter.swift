import RefundCore

/// Appends blocks to the active segment and rolls to a new segment when it is full. Owned by exactly one thread at
/// a time (the WAL's flusher); it is a value of Sendable parts so it can be handed to that thread.
struct SegmentWriter: Sendable {
    struct Segment: Sendable, Equatable {
        var number: UInt64
        var firstSequence: UInt64
        var name: String
    }

    let directory: String
    let fileSystem: any StorageFileSystem
    let segmentBytes: Int
    private(set) var segment: Segment
    private var handle: StorageFileHandle?
    private(set) var size: Int
    private var out = BinaryWriter(capacity: 64 << 10)
    private var scratch = BinaryWriter(capacity: 64 << 10)

    /// Creates a new, empty segment: header written, file fsynced, directory fsynced.
    static func create(
        directory: String, fileSystem: any StorageFileSystem, segmentBytes: Int, number: UInt64,
        firstSequence: UInt64
    ) throws(StorageError) -> SegmentWriter {
        let name = SegmentFormat.fileName(segment: number)
        let path = storagePath(directory, name)
        let handle = try fileSystem.createForAppend(path)
        do {
            try fileSystem.write(
                handle,
                SegmentFormat.encodeHeader(.init(segmentNumber: number, firstSequence: firstSequence)))
            try fileSystem.fsync(handle)
            try fileSystem.fsyncDirectory(directory)
        } catch {
            try? fileSystem.close(handle)
            throw error
        }
        return SegmentWriter(
            directory: directory, fileSystem: fileSystem, segmentBytes: segmentBytes,
            segment: Segment(number: number, firstSequence: firstSequence, name: name), handle: handle,
            size: SegmentFormat.headerSize)
    }

    /// Reopens a recovered segment for appending and fsyncs it, so that what recovery found is durable before
    /// anything is built on it.
    static func reopen(
        directory: String, fileSystem: any StorageFileSystem, segmentBytes: Int, segment: Segment
    ) throws(StorageError) -> SegmentWriter {
        let path = storagePath(directory, segment.name)
        let size = try fileSystem.fileSize(path)
        let handle = try fileSystem.openForAppend(path)
        do {
            try fileSystem.fsync(handle)
        } catch {
            try? fileSystem.close(handle)
            throw error
        }
        return SegmentWriter(
            directory: directory, fileSystem: fileSystem, segmentBytes: segmentBytes, segment: segment,
            handle: handle, size: Int(size))
    }

    private init(
        directory: String, fileSystem: any StorageFileSystem, segmentBytes: Int, segment: Segment,
        handle: StorageFileHandle, size: Int
    ) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.segmentBytes = segmentBytes
        self.segment = segment
        self.handle = handle
        self.size = size
    }

    /// Writes `records` (sequence numbers from `firstSequence`) as blocks of at most
    /// ``SegmentFormat/maxBlockPayload`` bytes, with one `write` per segment touched. Returns the segments it
    /// created by rolling (each already fsynced, with its directory entry).
    mutating func append(_ records: [[UInt8]], firstSequence: UInt64) throws(StorageError) -> [Segment] {
        var created: [Segment] = []
        out.removeAll()
        var start = 0
        var sequence = firstSequence
        while start < records.count {
            var end = start
            var payload = 0
            while end < records.count, end == start || payload + records[end].count < SegmentFormat.maxBlockPayload {
                payload += records[end].count + 5
                end += 1
            }
            let before = out.count
            try SegmentFormat.appendBlock(records[start..<end], firstSequence: sequence, to: &out, scratch: &scratch)
            // Roll before a block that would overflow a segment that already holds blocks.
            if size + before > SegmentFormat.headerSize, size + out.count > segmentBytes {
                let frame = Array(out.bytes[before...])
                if before > 0 {
                    try writeOut(Array(out.bytes[0..<before]))
                }
                try roll(firstSequence: sequence)
                created.append(segment)
                out.removeAll()
                out.raw(frame)
            }
            sequence += UInt64(end - start)
            start = end
        }
        if out.count > 0 { try writeOut(out.bytes) }
        out.removeAll()
        return created
    }

    private mutating func writeOut(_ bytes: [UInt8]) throws(StorageError) {
        guard let handle else { throw StorageError(code: .closed, message: "segment \(segment.name) is closed") }
        try fileSystem.write(handle, bytes)
        size += bytes.count
    }

    /// Fsyncs the current segment, closes it and starts the next one at `firstSequence`. The old segment is
    /// fsynced whatever the policy, so only the last segment can ever have a torn tail.
    private mutating func roll(firstSequence: UInt64) throws(StorageError) {
        try sync()
        try close()
        self = try SegmentWriter.create(
            directory: directory, fileSystem: fileSystem, segmentBytes: segmentBytes, number: segment.number + 1,
            firstSequence: firstSequence)
    }

    mutating func sync() throws(StorageError) {
        guard let handle else { throw StorageError(code: .closed, message: "segment \(segment.name) is closed") }
        try fileSystem.fsync(handle)
    }

    mutating func close() throws(StorageError) {
        guard let handle else { return }
        self.handle = nil
        try fileSystem.close(handle)
    }
}
