import RefundCore
import RefundStorage

extension Engine {
    /// `bulk.cancel_event`: cancels (and refunds) every order of the events that passes the filters. Each order
    /// is processed on its own: blocked or failing orders are skipped and reported, the rest continue; orders
    /// with a refund in progress are listed, not touched. Parents go after their children.
    ///
    /// Starts the job and returns its id at once; follow it with ``bulkStatus(jobID:)`` or the outbox
    /// (`bulk.summary` when every order is queued, `bulk.update` when the last pending refund resolves), or
    /// await ``runBulkCancellation(_:caller:)`` instead.
    public func startBulkCancellation(_ request: BulkCancelRequest, caller: Caller) async throws(RefundError) -> String {
        let job = try await prepareBulk(request, caller: caller)
        Task { await self.execute(job, caller: caller) }
        return job.id
    }

    /// Runs a bulk cancellation to the end of its processing (every order queued with the gateway) and returns
    /// its status.
    public func runBulkCancellation(_ request: BulkCancelRequest, caller: Caller) async throws(RefundError) -> BulkJobStatus {
        let job = try await prepareBulk(request, caller: caller)
        await execute(job, caller: caller)
        return job.snapshot
    }

    /// A job's status as it is now in memory (for following progress; it may be ahead of the log).
    public func bulkStatus(jobID: String) throws(RefundError) -> BulkJobStatus {
        guard let job = shared.jobs.job(jobID) else { throw RefundError(.jobNotFound, "no bulk job '\(jobID.prefix(64))'") }
        return job.snapshot
    }

    /// A job's status once everything it counts is durable (`bulk.status`): a crash cannot take back what it
    /// reports.
    public func durableBulkStatus(jobID: String) async throws(RefundError) -> BulkJobStatus {
        guard let job = shared.jobs.job(jobID) else { throw RefundError(.jobNotFound, "no bulk job '\(jobID.prefix(64))'") }
        let status = job.snapshot
        await readBarrier()
        return status
    }

    func prepareBulk(_ request: BulkCancelRequest, caller: Caller) async throws(RefundError) -> BulkJob {
        guard !request.events.isEmpty else { throw RefundError(.missingField, "events must name at least one event") }
        for (i, event) in request.events.enumerated() { try Handle.validate(event, field: "events[\(i)]") }
        if case .perLine? = request.options.fee {
            throw RefundError(.invalidField, "fee: a bulk cancellation takes {\"order\": N} or {\"each\": N}, not per_line")
        }
        guard request.options.lines == nil else {
            throw RefundError(.invalidField, "lines: a bulk cancellation refunds whole orders")
        }
        // Permissions and option checks once, up front, against the planner's own rules.
        try RefundPlanner.checkPermissions(request.options, caller)
        try RefundPlanner.validateOptions(request.options)
        let job = BulkJob(id: shared.jobs.nextID(), request: request, caller: caller, total: 0)
        await select(job)
        if let control, !request.dryRun {
            do throws(StorageError) {
                try await control.started(job, caller: caller)
            } catch {
                throw RefundError(.engineStopped, "the control log failed (\(error.message)); the job was not started")
            }
        }
        return job
    }

    /// Selects the job's orders in every partition, sets its total and registers it. Orders the job already
    /// refunded (a job restored after a restart) count as processed.
    func select(_ job: BulkJob) async {
        let parents = self.parents.withLock { $0 }
        var total = 0
        var done = 0
        await withTaskGroup(of: (Int, Int).self) { group in
            for partition in partitions {
                group.addTask {
                    let (first, second, done) = await partition.bulkSelect(job, parents: parents)
                    return (first + second, done)
                }
            }
            for await (count, refunded) in group {
                total += count
                done += refunded
            }
        }
        job.setTotal(total)
        if done > 0 { job.restoredProcessed(done) }
        shared.jobs.register(job)
    }

    /// Walks the job's selection, one worker per partition, a chunk at a time; between chunks each worker obeys
    /// pause and abort (``BulkJob/checkpoint()``). At the end the job's final control record says how it ended:
    /// queued (every order processed) or aborted.
    func execute(_ job: BulkJob, caller: Caller) async {
        guard job.beginExecuting() else { return }
        shared.metrics.bulkJobsStarted.increment()
        shared.metrics.bulkJobsRunning.increment()
        defer { shared.metrics.bulkJobsRunning.decrement() }
        // Under a gateway rate, chunks of about a second's worth of requests, so progress (and the pace and ETA
        // `bulk.status` reports) follows the gateway rather than jumping by thousands of orders at a time.
        let chunk = configuration.gatewayLimits.requestsPerSecond.map {
            min(configuration.bulkChunkSize, max(1, Int($0 / Double(partitions.count))))
        } ?? configuration.bulkChunkSize
        for phase in 0..<2 {
            var activeParents = Set<String>()
            if phase == 1 {
                // Parents wait until all their children are fully refunded (children were phase 0).
                for parent in parents.withLock({ $0 }) where await childrenActive(parent) { activeParents.insert(parent) }
            }
            let parentsToHold = activeParents
            job.workersStart(partitions.count)
            await withTaskGroup(of: Void.self) { group in
                for partition in partitions {
                    group.addTask {
                        defer { job.workerDone() }
                        var cursor: Int? = 0
                        while let position = cursor {
                            // Paused: wait here; aborted or closing: stop selecting (refunds made stay).
                            guard await job.checkpoint() else { return }
                            let step = await partition.bulkStep(
                                job, phase: phase, cursor: position, chunk: chunk, caller: caller, activeParents: parentsToHold)
                            // The chunk's refunds are durable (one group commit) before any money moves.
                            do throws(RefundError) {
                                try await self.durable(partition)
                            } catch {
                                return
                            }
                            if !step.attempts.isEmpty {
                                await self.send(step.attempts, to: partition, collect: false)
                                try? await self.durable(partition)
                            }
                            cursor = step.next
                        }
                    }
                }
            }
        }
        let ended = job.processingFinished()
        for partition in partitions { await partition.dropBulkSelection(job.id) }
        // Closing (or killed) mid-walk: write nothing; the next start resumes the job from its log.
        if job.isShutDown || shared.stopped.withLock({ $0 }) != nil {
            job.stopped(durable: false)
            return
        }
        let summary = job.snapshot
        // A dry run writes nothing: no control record, no event.
        guard !job.request.dryRun else {
            _ = job.markQueued()
            job.stopped(durable: true)
            return
        }
        guard await recordEnd(job, summary, aborted: ended == .aborted) else { return }
        shared.publishJobEvent(summary, kind: .bulkSummary, text: nil)
        if let done = job.markQueued() { shared.publishJobEvent(done, kind: .bulkUpdate, text: nil) }
        job.stopped(durable: true)
    }

    /// Writes the job's final control record (queued, or aborted with what it processed). False when the
    /// control log failed: the engine stops (fail-stop), and aborters are told.
    private func recordEnd(_ job: BulkJob, _ summary: BulkJobStatus, aborted: Bool) async -> Bool {
        guard let control else { return true }
        do throws(StorageError) {
            if aborted { try await control.aborted(summary) } else { try await control.queued(summary) }
            return true
        } catch {
            // Without the record a restart would run the job again (harmlessly: refunded orders are skipped), but
            // a control log that cannot write means nothing more can be acknowledged: fail-stop.
            shared.failStop(error, log: "control log")
            job.stopped(durable: false)
            return false
        }
    }

    // MARK: Pause, resume, abort

    /// `bulk.pause`: the job selects no new order until resumed. Answers once the pause is durable (a restart
    /// keeps the job paused) and every partition's worker has finished the chunk it was on: from then on no
    /// new order is touched. Refunds already made go on to the gateway and settle as usual.
    public func pauseBulk(jobID: String, caller: Caller) async throws(RefundError) -> BulkJobStatus {
        let job = try controllableJob(jobID, to: .paused)
        try await recordControl(job, .paused)
        job.set(.paused)
        await job.waitParked()
        return try await durableBulkStatus(jobID: jobID)
    }

    /// `bulk.resume`: a paused job selects orders again, from where it stopped (after a restart, from the
    /// orders it had not refunded yet).
    public func resumeBulk(jobID: String, caller: Caller) async throws(RefundError) -> BulkJobStatus {
        let job = try controllableJob(jobID, to: .running)
        try await recordControl(job, .running)
        job.set(.running)
        if !job.isExecuting {
            // Restored paused after a restart: nothing walks it yet. It runs as the caller that started it.
            Task { await self.execute(job, caller: job.caller) }
        }
        return try await durableBulkStatus(jobID: jobID)
    }

    /// `bulk.abort`: the job selects no more orders, for good; refunds it already made stay and settle as usual.
    /// Answers once the job's final record (aborted, with what it processed) is durable.
    public func abortBulk(jobID: String, caller: Caller) async throws(RefundError) -> BulkJobStatus {
        let job = try controllableJob(jobID, to: .aborted)
        // No record of its own: the job's final record (aborted, with what it processed) is the abort's.
        job.set(.aborted)
        if !job.isExecuting, job.beginExecuting() {
            // Restored paused after a restart: no worker to stop; the abort ends it here.
            _ = job.processingFinished()
            let summary = job.snapshot
            guard await recordEnd(job, summary, aborted: true) else {
                throw RefundError(.engineStopped, "the control log failed; the abort of \(jobID) is not durable")
            }
            shared.publishJobEvent(summary, kind: .bulkSummary, text: nil)
            if let done = job.markQueued() { shared.publishJobEvent(done, kind: .bulkUpdate, text: nil) }
            job.stopped(durable: true)
        } else if !(await job.waitStopped()) {
            throw RefundError(.engineStopped, "the engine stopped before the abort of \(jobID) was recorded")
        }
        return try await durableBulkStatus(jobID: jobID)
    }

    private func controllableJob(_ jobID: String, to mode: BulkJob.Control.Mode) throws(RefundError) -> BulkJob {
        guard let job = shared.jobs.job(jobID) else { throw RefundError(.jobNotFound, "no bulk job '\(jobID.prefix(64))'") }
        if let stopped = shared.stopped.withLock({ $0 }) { throw stopped }
        if let refusal = job.refusal(to: mode) { throw RefundError(.invalidState, refusal) }
        return job
    }

    /// Makes a pause or resume durable before it takes effect. An abort is final whatever comes after
    /// it, in memory (``BulkJob/set(_:)``) as in the log (``restoreJobs(_:)``), so records of racing requests
    /// cannot disagree with what took effect.
    private func recordControl(_ job: BulkJob, _ mode: BulkJob.Control.Mode) async throws(RefundError) {
        guard let control else { return }
        do throws(StorageError) {
            try await control.modeChanged(job.id, paused: mode == .paused)
        } catch {
            shared.failStop(error, log: "control log")
            throw RefundError(.engineStopped, "the control log failed (\(error.message)); the job is unchanged")
        }
    }
}

extension Engine {
    /// Restores the outbox's durable facts from the control log: the highest acknowledgement (events at or below
    /// it are dropped and never numbered again) and engine-level events under their logged numbers.
    func restoreOutbox(_ records: [ControlLog.Record]) async {
        var acknowledged: UInt64 = 0
        var events: [OutboxEvent] = []
        for record in records {
            switch record {
            case .acknowledged(let upTo): acknowledged = max(acknowledged, upTo)
            case .event(let event): events.append(event)
            case .started, .queued, .mode, .eventSettings: break
            }
        }
        for event in events { shared.advanceSequence(past: event.sequence) }
        shared.acknowledged(upTo: acknowledged)
        let kept = events.filter { $0.sequence > acknowledged }
        shared.engineOutbox.withLock { $0 = kept }
        if acknowledged > 0 {
            for partition in partitions { await partition.acknowledgeEvents(upTo: acknowledged) }
        }
    }

    /// Rebuilds bulk jobs from the control log after a restart: queued and aborted jobs get their counts back
    /// from the refunds they made; jobs a crash interrupted are selected again and resumed (an order the job
    /// already refunded is counted, never refunded twice), or wait for `bulk.resume` when they were paused.
    /// Returns the ids of the resumed jobs.
    func restoreJobs(_ records: [ControlLog.Record]) async -> [String] {
        var started: [ControlLog.StartedJob] = []
        var ended: [String: ControlLog.QueuedJob] = [:]
        var paused = Set<String>()
        var announced = Set<String>()  // "<job id> <event kind>" of the job events the log holds
        for record in records {
            switch record {
            case .started(let job): started.append(job)
            case .queued(let job): ended[job.id] = job
            case .mode(let jobID, let isPaused):
                if isPaused { paused.insert(jobID) } else { paused.remove(jobID) }
            case .event(let event): if let jobID = event.jobID { announced.insert("\(jobID) \(event.kind.rawValue)") }
            case .acknowledged, .eventSettings: break  // restored by restoreOutbox(_:), restoreEventSettings(_:)
            }
        }
        var resumed: [String] = []
        for record in started {
            shared.jobs.advance(past: record.id)
            let job = BulkJob(id: record.id, request: record.request, caller: record.caller, total: 0)
            if let done = ended[record.id] {
                var tally = BulkTally()
                tally.skipped = done.skipped.count
                tally.skippedOrders = done.skipped
                tally.processed = done.abortedAfter ?? done.total
                job.setTotal(done.total)
                job.restoredQueued()
                if done.abortedAfter != nil { job.restoredAborted() }
                job.add(tally)
                shared.jobs.register(job)
                for partition in partitions { await partition.publishJobCounts(record.id) }
                // A crash between the job's last durable change and its event leaves the event unlogged: the
                // summary (after the final record) or the last update (after the last settlement). Announce
                // them now, so a subscriber never misses the end of a job.
                if !announced.contains("\(record.id) \(OutboxEvent.Kind.bulkSummary.rawValue)") {
                    shared.publishJobEvent(job.snapshot, kind: .bulkSummary, text: nil)
                }
                if let done = job.markQueued(), !announced.contains("\(record.id) \(OutboxEvent.Kind.bulkUpdate.rawValue)") {
                    shared.publishJobEvent(done, kind: .bulkUpdate, text: nil)
                }
            } else {
                await select(job)
                for partition in partitions { await partition.publishJobCounts(record.id) }
                if paused.contains(record.id) {
                    job.set(.paused)  // waits for bulk.resume (or bulk.abort)
                    continue
                }
                resumed.append(record.id)
                let caller = record.caller
                Task { await self.execute(job, caller: caller) }
            }
        }
        return resumed
    }
}
