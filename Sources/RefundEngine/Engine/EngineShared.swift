import RefundCore
import RefundStorage
import Logging
import Synchronization

/// What the partitions share with the engine: configuration, clock, the global outbox sequence, bulk jobs.
/// Everything here is thread-safe; nothing here is touched per order on the hot path except the outbox counter,
/// which is advanced once per batch.
final class EngineShared: Sendable {
    let configuration: EngineConfiguration
    let clock: any EngineClock
    let jobs = BulkJobRegistry()
    let metrics = EngineMetrics()
    private let outboxSequence = Atomic<UInt64>(0)
    /// The run number new refund and request ids carry (0: none), set by `Engine.open` before any write.
    private let idRunNumber = Atomic<UInt64>(0)

    /// The run number for new ids, when they need one (see ``RefundID``).
    var idRun: UInt64? {
        let run = idRunNumber.load(ordering: .relaxed)
        return run == 0 ? nil : run
    }

    func tagIDs(withRun run: UInt64) { idRunNumber.store(run, ordering: .relaxed) }
    /// Engine-level events (bulk summaries and updates); per-order events live in their partitions.
    let engineOutbox = Mutex<[OutboxEvent]>([])
    /// Job events (`bulk.update`) a partition's change made due, waiting until that change is durable in the
    /// partition's log: per partition, the log position of the change and the job's status. The control log is
    /// another file with its own fsync: appending the event at once could make it durable before the change it
    /// announces, and a power loss between the two would leave a completed job whose last refund is pending.
    let deferredJobEvents = Mutex<[Int: [(sequence: UInt64, status: BulkJobStatus)]]>([:])
    /// How many wait in ``deferredJobEvents``: `Engine.durable` runs after every request, and takes the lock only
    /// when some do.
    let deferredJobEventCount = Atomic<Int>(0)

    /// What operators configured per event (`event.put`), and whether any is set: a refund decision reads the
    /// map only then (the lock stays off the hot path of an engine without event settings).
    let eventSettings = Mutex<[String: EventSettings]>([:])
    private let hasEventSettings = Atomic<Bool>(false)

    func setEventSettings(_ settings: EventSettings) {
        eventSettings.withLock { $0[settings.id] = settings }
        hasEventSettings.store(true, ordering: .releasing)
    }

    /// The self-service cutoff for `event`: its own when set, else the engine's; and whether it is the event's.
    func selfServiceCutoff(for event: String) -> (hours: Int64, isEvents: Bool) {
        if hasEventSettings.load(ordering: .acquiring),
            let hours = eventSettings.withLock({ $0[event]?.selfServiceCutoffHours })
        {
            return (hours, true)
        }
        return (configuration.selfServiceCutoffHours, false)
    }

    /// Set once any log fails: the whole engine then refuses changes and reads (the "fsyncgate" rule: a failed
    /// write or fsync is never retried, and nothing after it can be acknowledged).
    let stopped = Mutex<RefundError?>(nil)

    /// Where the engine logs what an operator must see once: a fail-stop, a failed snapshot.
    let logger = Mutex<Logger>(Logger(label: "refund-engine"))

    func stop(_ error: RefundError) {
        stopped.withLock { if $0 == nil { $0 = error } }
    }

    /// Stops the engine because a log write or fsync failed, and says so once, loudly, with the errno and the
    /// file. Returns the error every later change gets.
    @discardableResult
    func failStop(_ cause: StorageError, log name: String) -> RefundError {
        let failure = RefundError(
            .engineStopped, "the \(name) failed (\(cause.message)); the engine accepts no more changes until it is restarted")
        let first = stopped.withLock { current -> Bool in
            guard current == nil else { return false }
            current = failure
            return true
        }
        if first {
            metrics.failStops.increment()
            metrics.stopped.record(1)
            var metadata: Logger.Metadata = ["event": "fail_stop", "log": "\(name)", "code": "\(cause.code)"]
            if let errno = cause.errno { metadata["errno"] = "\(errno)" }
            if let path = cause.path { metadata["file"] = "\(path)" }
            logger.withLock { $0 }.critical("engine stopped: \(cause.message)", metadata: metadata)
        }
        return stopped.withLock { $0 } ?? failure
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

    /// Holds a `bulk.update` until the partition's log is durable up to `sequence` (``publishDeferredJobEvents``).
    func deferJobEvent(_ status: BulkJobStatus, partition: Int, sequence: UInt64) {
        deferredJobEvents.withLock { $0[partition, default: []].append((sequence, status)) }
        deferredJobEventCount.add(1, ordering: .releasing)
    }

    /// The highest log position a job event of `partition` waits for, when one waits (rarely: once per job).
    func deferredJobEventSequence(partition: Int) -> UInt64? {
        guard deferredJobEventCount.load(ordering: .acquiring) > 0 else { return nil }
        return deferredJobEvents.withLock { $0[partition]?.map(\.sequence).max() }
    }

    /// Publishes the job events of `partition` whose change is now fsynced (its log is synced to `durable`).
    func publishDeferredJobEvents(partition: Int, durable: UInt64) {
        guard deferredJobEventCount.load(ordering: .acquiring) > 0 else { return }
        let due: [BulkJobStatus] = deferredJobEvents.withLock { all in
            guard let waiting = all[partition], !waiting.isEmpty else { return [] }
            let ready = waiting.filter { $0.sequence <= durable }.map(\.status)
            if !ready.isEmpty { all[partition] = waiting.filter { $0.sequence > durable } }
            return ready
        }
        guard !due.isEmpty else { return }
        deferredJobEventCount.subtract(due.count, ordering: .releasing)
        for status in due { publishJobEvent(status, kind: .bulkUpdate, text: nil) }
    }

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
                    failStop(error, log: "control log")
                }
            }
            outbox.append(published)
        }
        func event(sequence: UInt64) -> OutboxEvent {
            OutboxEvent(
            sequence: sequence, kind: kind, at: clock.now(), orderID: nil, refundID: nil, jobID: status.jobID,
            notifyEmail: nil, amount: status.refunded, currency: nil,
            text: text ?? status.summaryText
        )
        }
    }
}
