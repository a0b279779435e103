import Foundation
import Testing

@testable import RefundStorage

/// Runs `body` with a fresh, uniquely named directory under the temporary directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("refund-storage-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url.path)
}

func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Deterministic record contents: sequence-dependent, somewhat compressible, varying length.
func record(_ i: Int, length: Int? = nil) -> [UInt8] {
    let n = length ?? (8 + (i * 7) % 40)
    return (0..<n).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0 / 3) }
}

/// The start offsets of the frames in a segment file (all of which must verify).
func frameOffsets(_ bytes: [UInt8]) -> [Int] {
    var offsets: [Int] = []
    var offset = SegmentFormat.headerSize
    while offset < bytes.count, case .valid(_, let payload) = SegmentFormat.checkFrame(bytes, at: offset) {
        offsets.append(offset)
        offset = payload.upperBound + SegmentFormat.frameTrailerSize
    }
    return offsets
}

/// Appends each batch and waits for it, so that every batch becomes exactly one block.
@discardableResult
func appendBatches(_ wal: WriteAheadLog, _ batches: [[[UInt8]]]) async throws -> [ClosedRange<UInt64>] {
    var ranges: [ClosedRange<UInt64>] = []
    for batch in batches {
        let range = try wal.append(contentsOf: batch)
        try await wal.waitDurable(range.upperBound)
        ranges.append(range)
    }
    return ranges
}

func segmentPaths(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { $0.hasPrefix("wal-") && $0.hasSuffix(".log") }
        .sorted()
        .map { directory + "/" + $0 }
}

/// The `StorageError` that `body` throws, or nil (recording an issue) when it throws nothing or something else.
func storageError(
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> StorageError? {
    do {
        try await body()
        Issue.record("expected a StorageError", sourceLocation: sourceLocation)
    } catch let error as StorageError {
        return error
    } catch {
        Issue.record("expected a StorageError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
