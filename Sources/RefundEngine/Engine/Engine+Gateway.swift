import RefundCore

extension Engine {
    /// Sends attempts to the gateway in batches and applies the answers to `partition`. Returns the refunds as
    /// they are after the answers.
    @discardableResult
    func send(_ attempts: [PendingAttempt], to partition: Partition, collect: Bool = true) async -> [Refund] {
        // Money leaves only once the change that sends it is fsynced, whatever the fsync policy: under
        // `.interval`/`.never` "durable" means written, and a power loss could otherwise forget a refund whose
        // money is already gone. A log that cannot sync stops the engine; the attempts then stay unsent.
        do throws(RefundError) {
            try await syncedBeforeSending(partition)
        } catch {
            return []
        }
        var touched: [Refund] = []
        var start = 0
        let batch = min(configuration.gatewayBatchSize, configuration.gatewayLimits.sliceLimit)
        while start < attempts.count {
            let slice = Array(attempts[start..<min(attempts.count, start + batch)])
            start += batch
            let outcomes = await call(slice.map(\.request))
            var answers: [AttemptAnswer] = []
            answers.reserveCapacity(slice.count)
            for (attempt, outcome) in zip(slice, outcomes) { answers.append(AttemptAnswer(ref: attempt.ref, outcome: outcome)) }
            touched += await partition.applyAnswers(answers, collect: collect)
        }
        return touched
    }

    /// One gateway call for `requests` (paced under the gateway limits), then the ones it answered `rateLimited`
    /// again after their retry-after, until every one has another answer or ``GatewayLimits/maximumRateLimitWait``
    /// has passed (then they are unknown: the retry scheduler sends them later, same attempt, same key). Answers
    /// in the order of `requests`, one per request.
    func call(_ requests: [GatewayRequest]) async -> [GatewayOutcome] {
        var outcomes = [GatewayOutcome](
            repeating: .unknown(reason: "the gateway gave no answer for this request"), count: requests.count)
        var open = Array(requests.indices)
        let giveUp = ContinuousClock.now + configuration.gatewayLimits.maximumRateLimitWait
        while !open.isEmpty {
            let sending = open.map { requests[$0] }
            if let pacer {
                while let wait = await pacer.admit(sending.count) { await Self.sleep(until: .now + wait) }
                await pacer.acquire(sending.count)
            }
            let metrics = shared.metrics
            metrics.gatewayCalls.increment()
            metrics.gatewayRequests.increment(by: sending.count)
            let started = ContinuousClock.now
            let answered = await gateway.refund(sending, settlements: settlementChannel)
            metrics.gatewayLatency.record(since: started)
            if let pacer { await pacer.release(sending.count) }
            var limited: [Int] = []
            var wait = Duration.zero
            for (k, index) in open.enumerated() {
                // A gateway that answers short gave no definite answer for the rest: they go again later, after
                // the retry backoff (never at once, which would spin), under the same keys.
                guard k < answered.count else { continue }
                metrics.gatewayOutcome(answered[k])
                if case .rateLimited(let retryAfter) = answered[k] {
                    limited.append(index)
                    wait = max(wait, retryAfter)
                } else {
                    outcomes[index] = answered[k]
                }
            }
            open = limited
            guard !open.isEmpty else { break }
            let next = ContinuousClock.now + max(wait, .milliseconds(10))
            if next > giveUp {
                for index in open { outcomes[index] = .unknown(reason: "rate limited by the gateway") }
                break
            }
            await Self.sleep(until: next)
        }
        return outcomes
    }

    /// Sleeps until `deadline`. The engine never cancels the tasks that send to the gateway; if one were cancelled,
    /// it would send at once (the gateway's own limit then answers `rateLimited`, and the request is sent again).
    private static func sleep(until deadline: ContinuousClock.Instant) async {
        do {
            try await Task.sleep(until: deadline, clock: .continuous)
        } catch {
            return
        }
    }

    /// Where a gateway reports late settlements.
    var settlementChannel: SettlementChannel {
        SettlementChannel { [weak self] settlements in
            guard let self else { return }
            for settlement in settlements {
                do throws(RefundError) {
                    _ = try await self.settle(
                        refundID: settlement.refundID, tender: settlement.tenderID, attempt: settlement.attempt,
                        succeeded: settlement.succeeded, reference: settlement.reference,
                        failureCode: settlement.failureCode, retryable: settlement.retryable)
                    self.shared.metrics.settlementsApplied.increment()
                } catch {
                    self.shared.metrics.settlementsDropped.increment()
                    // Not dropped silently: counted and logged (a stopped engine re-sends after its restart).
                    self.droppedSettlements.add(1, ordering: .relaxed)
                    self.shared.logger.withLock { $0 }.warning(
                        "settlement not applied: \(error.code.rawValue): \(error.message)",
                        metadata: ["event": "settlement_rejected", "refund_id": "\(settlement.refundID)"])
                }
            }
        }
    }

    /// Sends every attempt that is due now (first sends after a restart, and retries whose backoff has
    /// passed). Returns how many were sent. The background loop calls this; tests call it with a manual clock.
    @discardableResult
    public func runDueAttempts() async -> Int {
        let now = clock.now()
        return await withTaskGroup(of: Int.self) { group in
            for partition in partitions {
                group.addTask {
                    var sent = 0
                    while true {
                        let due = await partition.dueAttempts(now: now, limit: self.configuration.gatewayBatchSize)
                        if due.isEmpty { break }
                        sent += due.count
                        // Nothing goes to the gateway before the change that made it due is durable.
                        if (try? await self.durable(partition)) == nil { break }
                        await self.send(due, to: partition, collect: false)
                        try? await self.durable(partition)
                    }
                    return sent
                }
            }
            let sent = await group.reduce(0, +)
            shared.metrics.scheduledRetries.increment(by: sent)
            return sent
        }
    }

    /// The earliest time an attempt is due, if any.
    public func nextDueAttempt() async -> Timestamp? {
        var earliest: Timestamp?
        for partition in partitions {
            if let due = await partition.nextDue(), earliest.map({ due < $0 }) ?? true { earliest = due }
        }
        return earliest
    }

    /// Starts the background task that sends due retries (polls every `interval`).
    public func startRetryScheduler(interval: Duration = .milliseconds(200)) {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                await self.runDueAttempts()
            }
        }
        retryLoop.withLock { old in
            old?.cancel()
            old = task
        }
    }

    /// Stops background work.
    public func shutdown() {
        retryLoop.withLock { task in
            task?.cancel()
            task = nil
        }
        // Workers of paused jobs leave (writing nothing: the next start finds the job paused in its log).
        for job in shared.jobs.all { job.shutDown() }
    }
}
