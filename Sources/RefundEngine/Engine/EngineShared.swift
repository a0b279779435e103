import RefundCore
import RefundStorage
import Synchronization

/// What the partitions share with the engine: configuration, clock, the global outbox sequence, bulk jobs.
/// Everything here is thread-safe; nothing here is touched per order on the hot path except the outbox counter,
/// which is advanced once per batch.
final class EngineShared: Sendable {
    let configuration: EngineConfiguration
    let clock: any EngineClock
    let jobs = BulkJobRegistry()
    private let outboxSequence = Atomic<UInt64>(0)
    /// Engine-level events (bulk summaries and updates); per-order events live in their partitions.
    let engineOutbox = Mutex<[OutboxEvent]>([])

    /// Set once any log fails: the whole engine then refuses changes and reads (the "fsyncgate" rule: a failed
    /// write or fsync is never retried, and nothing after it can be acknowledged).
    let stopped = Mutex<RefundError?>(nil)

    func stop(_ error: RefundError) {
        stopped.withLock { if $0 == nil { $0 = error } }
    }

    init(configuration: EngineConfiguration, clock: any EngineClock) {
        self.configuration = configuration
        self.clock = clock
    }

    /// Reserves `count` sequence numbers; returns the first.
    func reserveSequence(_ count: Int) -> UInt64 {
        outboxSequence.wrappingAdd(UInt64(count), ordering: .relaxed).oldValue + 1
    }

    var lastSequence: UInt64 { outboxSequence.load(ordering: .relaxed) }

    /// The highest sequence a subscriber acknowledged (restored from the control log).
    private let acknowledgedUpTo = Atomic<UInt64>(0)

    func acknowledged(upTo sequence: UInt64) {
        advanceSequence(past: sequence)
        var current = acknowledgedUpTo.load(ordering: .relaxed)
        while current < sequence {
            let (exchanged, original) = acknowledgedUpTo.compareExchange(expected: current, desired: sequence, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    var acknowledgedSequence: UInt64 { acknowledgedUpTo.load(ordering: .relaxed) }

    /// Moves the outbox counter past `sequence` (replay hands out logged numbers again).
    func advanceSequence(past sequence: UInt64) {
        var current = outboxSequence.load(ordering: .relaxed)
        while current < sequence {
            let (exchanged, original) = outboxSequence.compareExchange(
                expected: current, desired: sequence, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// The control log, for a durable engine: engine-level events are logged there under their numbers.
    let control = Mutex<ControlLog?>(nil)

    func publishJobEvent(_ status: BulkJobStatus, kind: OutboxEvent.Kind, text: String?) {
        // Reserved, logged and appended under one lock, so a reader never sees a hole below the watermark and the
        // log holds engine events in sequence order. Readers of events wait for the control log (readBarrier).
        let control = self.control.withLock { $0 }
        engineOutbox.withLock { outbox in
            let published = event(sequence: reserveSequence(1))
            if let control {
                do throws(StorageError) {
                    _ = try control.append(published)
                } catch {
                    stop(RefundError(.engineStopped, "the control log failed (\(error.message)); the engine accepts no more changes"))
                }
            }
            outbox.append(published)
        }
        func event(sequence: UInt64) -> OutboxEvent {
            OutboxEvent(
            sequence: sequence, kind: kind, at: clock.now(), orderID: nil, refundID: nil, jobID: status.jobID,
            notifyEmail: nil, amount: status.refunded, currency: nil,
            text: text
                ?? "total=\(status.total) processed=\(status.processed) succeeded=\(status.succeeded) pending=\(status.pending) failed=\(status.failed) skipped=\(status.skipped) refunded=\(status.refunded) fee_retained=\(status.feeRetained) state=\(status.state.rawValue)"
        )
        }
    }
}
