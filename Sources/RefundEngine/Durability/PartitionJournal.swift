import RefundCore
import RefundStorage
import Synchronization

/// One partition's write-ahead log and snapshot store.
///
/// Each partition has its own log, so partitions never serialise on one lock to log: they append to their own
/// queue and share nothing but the disk. A log record is an envelope around one ``ChangeCodec`` record:
///
///     u8       record kind (1: order changes)
///     uvarint  number of outbox sequence ranges reserved by the commit
///     (uvarint first, uvarint count) per range
///     ...      the ChangeCodec record (order id and its changes)
///
/// The outbox ranges are logged so a replay hands out the same event sequence numbers as the original run:
/// a subscriber's cursor stays valid across a restart.
///
/// A record of kind 2 holds many commits made in one actor turn (a bulk chunk's refunds, a batch of gateway
/// answers) as one ``CommitBatchCodec`` record: `u8 2` then the batch. Its commits are replayed in order, each
/// with its own outbox ranges, exactly as if each had been a record of kind 1; they become durable together.
final class PartitionJournal: Sendable {
    static let orderChangesKind: UInt8 = 1
    static let commitBatchKind: UInt8 = 2

    let directory: String
    let log: WriteAheadLog
    let snapshots: SnapshotStore
    /// The last sequence number appended by the partition (read by the engine without an actor hop, to wait
    /// for durability after an operation).
    private let appended = Atomic<UInt64>(0)
    private let sinceSnapshot = Atomic<Int>(0)
    private let bytesSinceSnapshot = Atomic<Int>(0)
    /// The log position the newest snapshot covers.
    private let snapshotSequence = Atomic<UInt64>(0)

    init(directory: String, log: WriteAheadLog, snapshots: SnapshotStore) {
        self.directory = directory
        self.log = log
        self.snapshots = snapshots
    }

    var lastAppended: UInt64 { appended.load(ordering: .acquiring) }

    /// Sets the position recovery found the log at: the last record it holds, or the last one the snapshot
    /// covers. A snapshot taken before anything new is written must cover this, not 0, or the next start would
    /// replay the whole log on top of it.
    func recovered(at sequence: UInt64) {
        appended.store(sequence, ordering: .releasing)
    }

    /// The log position the newest snapshot written (or loaded) covers.
    var lastSnapshot: UInt64 { snapshotSequence.load(ordering: .relaxed) }

    /// Commits appended since the last snapshot (a commit batch counts each of its commits).
    var recordsSinceSnapshot: Int { sinceSnapshot.load(ordering: .relaxed) }

    /// Bytes of records appended since the last snapshot (before compression).
    var recordBytesSinceSnapshot: Int { bytesSinceSnapshot.load(ordering: .relaxed) }

    func resetSnapshotCounter() {
        sinceSnapshot.store(0, ordering: .relaxed)
        bytesSinceSnapshot.store(0, ordering: .relaxed)
    }

    /// Records that a snapshot now covers `sequence`; returns the position the previous one covered.
    @discardableResult
    func markSnapshot(_ sequence: UInt64) -> UInt64 {
        snapshotSequence.exchange(sequence, ordering: .relaxed)
    }

    /// Appends one commit; returns its sequence number.
    func append(orderID: String, changes: [OrderChange], outbox: [(first: UInt64, count: Int)]) throws(StorageError)
        -> UInt64
    {
        var writer = BinaryWriter(capacity: 256)
        writer.u8(Self.orderChangesKind)
        writer.uvarint(UInt64(outbox.count))
        for range in outbox {
            writer.uvarint(range.first)
            writer.uvarint(UInt64(range.count))
        }
        ChangeCodec.encode(orderID: orderID, changes, into: &writer)
        let record = writer.take()
        let sequence = try log.append(record)
        precondition(sequence > appended.load(ordering: .relaxed), "log sequence numbers must increase")
        appended.store(sequence, ordering: .releasing)
        sinceSnapshot.add(1, ordering: .relaxed)
        bytesSinceSnapshot.add(record.count, ordering: .relaxed)
        return sequence
    }

    /// Appends many commits as one record (kind 2); returns its sequence number.
    func append(batch: [CommitBatchCodec.Entry]) throws(StorageError) -> UInt64 {
        var writer = BinaryWriter(capacity: 64 + batch.count * 48)
        writer.u8(Self.commitBatchKind)
        CommitBatchCodec.encode(batch, into: &writer)
        let record = writer.take()
        // The compact forms derive fields (ids, totals, transaction states): what replay reads back must be what
        // was committed. Checked on every batch in debug builds (the tests and the simulation).
        assert(Self.decodesTo(record, batch), "a commit batch must decode to the commits it was made from")
        let sequence = try log.append(record)
        precondition(sequence > appended.load(ordering: .relaxed), "log sequence numbers must increase")
        appended.store(sequence, ordering: .releasing)
        // Counted as the commits it holds: the snapshot trigger measures what a replay has to apply.
        sinceSnapshot.add(batch.count, ordering: .relaxed)
        bytesSinceSnapshot.add(record.count, ordering: .relaxed)
        return sequence
    }

    /// Waits until everything the partition appended so far is durable under the fsync policy.
    func waitForAppended() async throws(StorageError) {
        let target = lastAppended
        if target > 0, target < log.nextSequence { try await log.waitDurable(target) }
    }

    /// Waits until everything the partition appended so far is fsynced, whatever the policy: the gate before
    /// money leaves through the gateway.
    func waitForAppendedSynced() async throws(StorageError) {
        let target = lastAppended
        if target > 0, target < log.nextSequence { try await log.waitSynced(target) }
    }

    struct Entry {
        var outbox: [(first: UInt64, count: Int)]
        var orderID: String
        var changes: [OrderChange]
    }

    /// The commits of one record, in the order they were made: one for kind 1, one or more for kind 2.
    static func decode(_ bytes: [UInt8]) throws(BinaryDecodingError) -> [Entry] {
        var reader = BinaryReader(bytes)
        let kind = try reader.u8()
        switch kind {
        case orderChangesKind:
            let ranges = try reader.uvarint()
            guard ranges <= 1024 else { throw BinaryDecodingError(message: "too many outbox ranges", offset: reader.offset) }
            var outbox: [(first: UInt64, count: Int)] = []
            for _ in 0..<ranges {
                let rangeOffset = reader.offset
                let first = try reader.uvarint()
                let count = try reader.uvarint()
                try checkRange(first: first, count: count, offset: rangeOffset)
                outbox.append((first, Int(count)))
            }
            let record = try ChangeCodec.decode(from: &reader)
            try reader.expectEnd()
            return [Entry(outbox: outbox, orderID: record.orderID, changes: record.changes)]
        case commitBatchKind:
            let start = reader.offset
            let batch = try CommitBatchCodec.decode(from: &reader)
            try reader.expectEnd()
            var entries: [Entry] = []
            entries.reserveCapacity(batch.count)
            for commit in batch {
                guard commit.outbox.count <= 1024 else {
                    throw BinaryDecodingError(message: "too many outbox ranges in a commit of order \(commit.orderID.prefix(64))", offset: start)
                }
                var outbox: [(first: UInt64, count: Int)] = []
                outbox.reserveCapacity(commit.outbox.count)
                for range in commit.outbox {
                    try checkRange(first: range.first, count: UInt64(range.count), offset: start)
                    outbox.append((range.first, range.count))
                }
                entries.append(Entry(outbox: outbox, orderID: commit.orderID, changes: commit.changes))
            }
            return entries
        default:
            throw BinaryDecodingError(message: "unknown partition log record kind \(kind)", offset: 0)
        }
    }

    /// Whether `record` decodes to exactly `batch` (a debug check of the encoder).
    static func decodesTo(_ record: [UInt8], _ batch: [CommitBatchCodec.Entry]) -> Bool {
        do throws(BinaryDecodingError) {
            let entries = try decode(record)
            return entries.count == batch.count
                && zip(entries, batch).allSatisfy { entry, commit in
                    entry.orderID == commit.orderID && entry.changes == commit.changes
                        && entry.outbox.map(\.first) == commit.outbox.map(\.first)
                        && entry.outbox.map(\.count) == commit.outbox.map(\.count)
                }
        } catch {
            return false
        }
    }

    /// Outbox numbers start at 1 and replay computes a range's last one (`first + count - 1`): a range must lie
    /// inside 1...maxSequence so that cannot wrap, and no commit reserves more than 1024 at once.
    private static func checkRange(first: UInt64, count: UInt64, offset: Int) throws(BinaryDecodingError) {
        guard count <= 1024 else { throw BinaryDecodingError(message: "outbox range too long", offset: offset) }
        guard first >= 1, first - 1 <= SegmentFormat.maxSequence - count else {
            throw BinaryDecodingError(
                message: "outbox range of \(count) from \(first) is outside 1...\(SegmentFormat.maxSequence)", offset: offset)
        }
    }
}
