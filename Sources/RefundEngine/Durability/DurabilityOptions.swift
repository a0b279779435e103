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
}
