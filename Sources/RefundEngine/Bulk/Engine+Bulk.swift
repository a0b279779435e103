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
        let job = BulkJob(id: shared.jobs.nextID(), request: request, total: 0)
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

    /// Selects the job's orders in every partition, sets its total and registers it.
    func select(_ job: BulkJob) async {
        let parents = self.parents.withLock { $0 }
        var total = 0
        await withTaskGroup(of: Int.self) { group in
            for partition in partitions {
                group.addTask {
                    let (first, second) = await partition.bulkSelect(job, parents: parents)
                    return first + second
                }
            }
            for await count in group { total += count }
        }
        job.setTotal(total)
        shared.jobs.register(job)
    }

    func execute(_ job: BulkJob, caller: Caller) async {
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
            await withTaskGroup(of: Void.self) { group in
                for partition in partitions {
                    group.addTask {
                        var cursor: Int? = 0
                        while let position = cursor {
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
        let summary = job.snapshot
        // A dry run writes nothing: no control record, no event.
        guard !job.request.dryRun else {
            _ = job.markQueued()
            return
        }
        if let control {
            do throws(StorageError) {
                try await control.queued(summary)
            } catch {
                // Without the record a restart would run the job again (harmlessly: refunded orders are skipped),
                // but a control log that cannot write means nothing more can be acknowledged: fail-stop.
                shared.failStop(error, log: "control log")
                return
            }
        }
        shared.publishJobEvent(summary, kind: .bulkSummary, text: nil)
        if let done = job.markQueued() { shared.publishJobEvent(done, kind: .bulkUpdate, text: nil) }
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
            case .started, .queued: break
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

    /// Rebuilds bulk jobs from the control log after a restart: queued jobs get their counts back from the
    /// refunds they made; jobs a crash interrupted are selected again and resumed (an order the job already
    /// refunded is counted, never refunded twice). Returns the ids of the resumed jobs.
    func restoreJobs(_ records: [ControlLog.Record]) async -> [String] {
        var started: [ControlLog.StartedJob] = []
        var queued: [String: ControlLog.QueuedJob] = [:]
        var announced = Set<String>()  // "<job id> <event kind>" of the job events the log holds
        for record in records {
            switch record {
            case .started(let job): started.append(job)
            case .queued(let job): queued[job.id] = job
            case .event(let event): if let jobID = event.jobID { announced.insert("\(jobID) \(event.kind.rawValue)") }
            case .acknowledged: break  // restored by restoreOutbox(_:)
            }
        }
        var resumed: [String] = []
        for record in started {
            shared.jobs.advance(past: record.id)
            let job = BulkJob(id: record.id, request: record.request, total: 0)
            if let done = queued[record.id] {
                var tally = BulkTally()
                tally.skipped = done.skipped.count
                tally.skippedOrders = done.skipped
                tally.processed = done.total
                job.setTotal(done.total)
                job.restoredQueued()
                job.add(tally)
                shared.jobs.register(job)
                for partition in partitions { await partition.publishJobCounts(record.id) }
                // A crash between the job's last durable change and its event leaves the event unlogged: the
                // summary (after the queued record) or the completion (after the last settlement). Announce
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
                resumed.append(record.id)
                let caller = record.caller
                Task { await self.execute(job, caller: caller) }
            }
        }
        return resumed
    }
}
