import CoreMetrics
import RefundCore

/// What a ``WriteAheadLog`` reports through swift-metrics (handles only; the process picks the backend). The
/// engine names them per log (`RefundEngine`'s `LogMetrics.named`); without metrics the log reports nothing.
public struct LogMetrics: Sendable {
    /// Records appended.
    public var appends: Counter
    /// Record bytes appended (before compression).
    public var bytes: Counter
    /// fsyncs of a segment.
    public var fsyncs: Counter
    public var fsyncLatency: Timer
    /// Records per flusher round: the group commit's batch size.
    public var batchRecords: Recorder
    /// An fsync that took longer than this is reported to `slowFsync` (once per fsync).
    public var slowFsyncThreshold: Duration = .milliseconds(100)
    public var slowFsync: (@Sendable (Duration) -> Void)?

    public init(appends: Counter, bytes: Counter, fsyncs: Counter, fsyncLatency: Timer, batchRecords: Recorder) {
        self.appends = appends
        self.bytes = bytes
        self.fsyncs = fsyncs
        self.fsyncLatency = fsyncLatency
        self.batchRecords = batchRecords
    }

    func appended(_ batch: [[UInt8]]) {
        appends.increment(by: batch.count)
        var total = 0
        for record in batch { total &+= record.count }
        bytes.increment(by: total)
        batchRecords.record(batch.count)
    }

    func synced(after duration: Duration) {
        fsyncs.increment()
        fsyncLatency.recordNanoseconds(duration.wholeNanoseconds)
        if duration > slowFsyncThreshold { slowFsync?(duration) }
    }
}
