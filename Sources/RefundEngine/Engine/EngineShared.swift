import RefundCore
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

    func publishJobEvent(_ status: BulkJobStatus, kind: OutboxEvent.Kind, text: String?) {
        // Reserved and appended under one lock, so a reader never sees a hole below the watermark.
        engineOutbox.withLock { $0.append(event(sequence: reserveSequence(1))) }
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
