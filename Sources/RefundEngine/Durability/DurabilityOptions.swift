import RefundCore
import Logging
import RefundStorage

/// Where and how an engine keeps its write-ahead log and snapshots.
public struct DurabilityOptions: Sendable {
    /// The data directory: `p<N>/` per partition (log segments and snapshots), `control/` for bulk jobs.
    public var directory: String
    /// `.always`: acknowledge after fsync (group commit); `.interval(milliseconds:)`; `.never`.
    public var fsync: FsyncPolicy
    public var segmentBytes: Int
    /// Take a snapshot of a partition once its log has grown by this many records since the last one
    /// (0: no record trigger).
    public var snapshotEveryRecords: Int
    /// … or by this many bytes of records (before compression) since the last one (0: no size trigger). With
    /// both at 0, snapshots are taken only on request and at clean shutdown.
    public var snapshotEveryBytes: Int
    /// Truncate a corrupt log at the last good record instead of refusing to start (reports what was dropped).
    public var repair: Bool
    /// The file layer (a fault-injecting one in tests).
    public var fileSystem: any StorageFileSystem
    /// Where a fail-stop, a repair and a failed snapshot are logged (once each, with their fields).
    public var logger: Logger = Logger(label: "refund-engine")
    /// An fsync slower than this is logged at warning (`event=slow_fsync`) and counted in the fsync histogram.
    public var slowFsync: Duration = .milliseconds(100)

    public init(
        directory: String, fsync: FsyncPolicy = .always, segmentBytes: Int = 64 << 20,
        snapshotEveryRecords: Int = 1_000_000, snapshotEveryBytes: Int = 256 << 20, repair: Bool = false,
        fileSystem: any StorageFileSystem = PosixFileSystem()
    ) {
        self.directory = directory
        self.fsync = fsync
        self.segmentBytes = segmentBytes
        self.snapshotEveryRecords = snapshotEveryRecords
        self.snapshotEveryBytes = snapshotEveryBytes
        self.repair = repair
        self.fileSystem = fileSystem
    }
}

/// What recovery found and did when an engine opened its data directory.
public struct RecoverySummary: Sendable, Equatable {
    public var partitions: Int
    /// Orders restored from snapshots.
    public var ordersFromSnapshots: Int
    /// Log records replayed after the snapshots.
    public var recordsReplayed: Int
    /// Torn tails cut off the logs (a crash mid-write), as "file: bytes".
    public var tornTails: [String]
    /// What a repair dropped, as text, when `repair` was on.
    public var repairs: [String]
    /// Snapshots skipped as unreadable.
    public var skippedSnapshots: [String]
    /// Bulk jobs found unfinished and resumed.
    public var resumedJobs: [String]
    /// What a repair went on without: segments the manifest listed that were gone, ranges of records in neither
    /// a snapshot nor the log. Empty unless `repair` was set (without it, these refuse to start: `data_missing`).
    public var missing: [String] = []
    /// Log segments removed because the log ended below its snapshot (the snapshot holds all their records).
    public var obsoleteSegments: [String] = []
}

/// How snapshots have gone since the engine opened: shown by `stats` and `health`.
public struct SnapshotHealth: Sendable, Equatable, Codable {
    public var lastSuccessAt: Timestamp?
    public var lastError: String?
    public var lastErrorAt: Timestamp?
    public var failures: Int = 0

    enum CodingKeys: String, CodingKey {
        case failures
        case lastSuccessAt = "last_success_at", lastError = "last_error", lastErrorAt = "last_error_at"
    }

    public init() {}

    mutating func succeeded(at now: Timestamp) {
        lastSuccessAt = now
        lastError = nil
    }

    mutating func failed(_ message: String, at now: Timestamp) {
        lastError = message
        lastErrorAt = now
        failures += 1
    }
}
