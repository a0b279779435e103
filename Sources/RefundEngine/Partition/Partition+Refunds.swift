import RefundCore

/// What a partition decided for `refund.create`.
enum CreateResult: Sendable {
    /// Created; `attempts` are the gateway requests to send now.
    case created(Refund, attempts: [PendingAttempt])
    /// A repeat of an idempotent request: the first result.
    case repeated(Refund)
    /// The selection refunds a wallet top-up: the engine must supply the customer's balance and ask again.
    case needsBalance(customer: String, currency: Currency)
}

extension Partition {
    /// The facts a refund decision needs; with `selfServiceEvent`, the self-service cutoff of that event (its
    /// own setting, else the engine's).
    func context(
        _ caller: Caller, childrenActive: Bool, balance: Int64, jobID: String? = nil, selfServiceEvent: String? = nil
    ) -> RefundContext {
        var context = RefundContext(
            now: shared.clock.now(), caller: caller, childrenActive: childrenActive, customerBalance: balance,
            selfServiceCutoffHours: shared.configuration.selfServiceCutoffHours, jobID: jobID)
        if let event = selfServiceEvent {
            (context.selfServiceCutoffHours, context.selfServiceCutoffIsEventSetting) = shared.selfServiceCutoff(for: event)
        }
        return context
    }

    /// `refund.create` (and everything built on it: cancel, approve, moderation).
    func createRefund(
        _ orderID: String, _ options: RefundOptions, caller: Caller, childrenActive: Bool, balance: Int64?,
        requestNumber: Int? = nil, adminNote: String? = nil
    ) throws(RefundError) -> CreateResult {
        try ensureRunning()
        let slot = try slot(orderID)
        let state = states[slot]
        if let key = options.idempotencyKey, let previous = state.idempotency[key] {
            guard previous.options == options.withoutIdempotencyKey else {
                throw RefundError(
                    .idempotencyConflict, "idempotency_key '\(key.prefix(64))' was used with other parameters on order \(orderID)")
            }
            return .repeated(state.refunds[previous.refund - 1])
        }
        // Every method removing a top-up takes its credit back (`none` included), so every one needs the balance.
        if balance == nil, let customer = state.order.customer,
            state.order.lines.indices.contains(where: {
                state.lineStatus[$0] == .active && state.order.lines[$0].kind == .walletTopUp
                    && (options.lines?.contains(state.order.lines[$0].id) ?? true)
            })
        {
            return .needsBalance(customer: customer, currency: state.order.currency)
        }
        let context = context(
            caller, childrenActive: childrenActive, balance: balance ?? 0,
            selfServiceEvent: options.selfService ? state.order.event : nil)
        let plan = try RefundPlanner.plan(state, options, context: context)
        var refund = makeRefund(state, plan, options, context)
        var changes: [OrderChange] = []
        if let requestNumber {
            // The request's own id (it may carry another run number than ids made now).
            refund.requestID =
                requestNumber <= state.requests.count
                ? state.requests[requestNumber - 1].id : RequestID.make(order: orderID, number: requestNumber)
            changes.append(.refundCreated(refund, options: Partition.recorded(options)))
            changes.append(
                .requestDecided(
                    request: requestNumber, approved: true, note: adminNote, refundID: refund.id, at: context.now,
                    by: caller.id))
        } else {
            changes.append(.refundCreated(refund, options: Partition.recorded(options)))
        }
        commit(slot, changes)
        return .created(states[slot].refunds[state.refunds.count], attempts: takeDueAttempts(slot, now: context.now))
    }

    func makeRefund(_ state: OrderState, _ plan: RefundPlan, _ options: RefundOptions, _ context: RefundContext) -> Refund {
        let number = state.refunds.count + 1
        return Refund(
            id: RefundID.make(order: state.order.id, number: number, run: shared.idRun), orderID: state.order.id, method: options.method,
            amount: plan.amount, feeRetained: plan.feeRetained, tax: plan.tax, bookingFee: plan.bookingFee,
            reason: options.reason, note: options.note, createdAt: context.now, createdBy: context.caller.id,
            restock: options.restock, lines: plan.lines, transactions: plan.transactions, jobID: context.jobID,
            notify: options.notify, emailText: options.emailText)
    }

    func preview(_ orderID: String, _ options: RefundOptions, caller: Caller, childrenActive: Bool, balance: Int64)
        throws(RefundError) -> RefundPreview
    {
        let state = states[try slot(orderID)]
        return try RefundPlanner.preview(
            state, options,
            context: context(
                caller, childrenActive: childrenActive, balance: balance,
                selfServiceEvent: options.selfService ? state.order.event : nil))
    }

    // MARK: Gateway attempts

    /// Pending transactions of the order in `slot` whose attempt is due, marked in flight.
    func takeDueAttempts(_ slot: Int, now: Timestamp) -> [PendingAttempt] {
        var out: [PendingAttempt] = []
        // Read in place: copying refunds here would retain every field of every refund of the order.
        for r in states[slot].refunds.indices {
            for t in states[slot].refunds[r].transactions.indices {
                guard states[slot].refunds[r].transactions[t].status == .pending,
                    let due = states[slot].refunds[r].transactions[t].nextAttemptAt, due <= now,
                    let tenderID = states[slot].refunds[r].transactions[t].tender
                else { continue }
                let orderID = states[slot].order.id
                let ref = TransactionRef(orderID: orderID, refund: r + 1, transaction: t)
                guard inFlight.insert(ref).inserted else { continue }
                let tenders = states[slot].order.tenders
                out.append(
                    PendingAttempt(
                        ref: ref,
                        request: GatewayRequest(
                            refundID: states[slot].refunds[r].id, orderID: orderID, tenderID: tenderID,
                            paymentReference: tenders.first { $0.id == tenderID }?.gatewayRef,
                            amount: states[slot].refunds[r].transactions[t].amount,
                            currency: states[slot].order.currency,
                            attempt: states[slot].refunds[r].transactions[t].attempts + 1)))
            }
        }
        return out
    }

    /// Every due attempt in this partition (the retry scheduler), at most `limit`.
    func dueAttempts(now: Timestamp, limit: Int) -> [PendingAttempt] {
        var out: [PendingAttempt] = []
        for slot in pendingSlots {
            out += takeDueAttempts(slot, now: now)
            if out.count >= limit { break }
        }
        return out
    }

    /// The earliest time a pending transaction here is due, if any.
    func nextDue() -> Timestamp? {
        var earliest: Timestamp?
        for slot in pendingSlots {
            for refund in states[slot].refunds {
                for transaction in refund.transactions where transaction.status == .pending {
                    if let due = transaction.nextAttemptAt, earliest.map({ due < $0 }) ?? true { earliest = due }
                }
            }
        }
        return earliest
    }

    /// Applies gateway answers; with `collect`, returns the refunds they touched, as they are now.
    @discardableResult
    func applyAnswers(_ answers: [AttemptAnswer], collect: Bool) -> [Refund] {
        let now = shared.clock.now()
        var touched: [Refund] = []
        // One log record for the whole batch of answers.
        loggingAsOneRecord {
            for answer in answers {
                let ref = answer.ref
                inFlight.remove(ref)
                guard let slot = slots[ref.orderID], ref.refund >= 1, ref.refund <= states[slot].refunds.count,
                    ref.transaction < states[slot].refunds[ref.refund - 1].transactions.count
                else { continue }
                let status = states[slot].refunds[ref.refund - 1].transactions[ref.transaction].status
                let due = states[slot].refunds[ref.refund - 1].transactions[ref.transaction].nextAttemptAt
                let attempts = states[slot].refunds[ref.refund - 1].transactions[ref.transaction].attempts
                guard status == .pending, due != nil else { continue }
                let result = attemptResult(answer.outcome, attemptsAfter: attempts + 1, now: now)
                commit(slot, [.attemptResult(refund: ref.refund, transaction: ref.transaction, result: result, at: now)])
                if collect { touched.append(states[slot].refunds[ref.refund - 1]) }
            }
        }
        flushJobDeltas()
        return touched
    }

    func attemptResult(_ outcome: GatewayOutcome, attemptsAfter: Int, now: Timestamp) -> AttemptResult {
        switch outcome {
        case .succeeded(let reference): return .succeeded(reference: reference)
        case .pending(let reference): return .accepted(reference: reference)
        case .failed(let code, let retryable):
            let retryAt = retryable ? shared.configuration.retryPolicy.nextAttempt(after: attemptsAfter, at: now) : nil
            return .failed(code: code, retryable: retryable, retryAt: retryAt)
        case .rateLimited:
            // The engine resends these (Engine.send); one that reaches a partition is left as unknown.
            return attemptResult(.unknown(reason: "rate limited by the gateway"), attemptsAfter: attemptsAfter, now: now)
        case .unknown(let reason):
            return .unknown(
                reason: reason,
                retryAt: shared.configuration.retryPolicy.nextAttempt(after: max(attemptsAfter, 1), at: now) ?? now.adding(milliseconds: 60_000))
        }
    }

    /// `refund.settle`: the final answer for a transaction the gateway accepted earlier.
    func settle(
        _ refundID: String, tender: String, attempt: Int?, succeeded: Bool, reference: String?, failureCode: String?,
        retryable: Bool
    ) throws(RefundError) -> (Refund, [PendingAttempt]) {
        try ensureRunning()
        let (slot, number) = try locateRefund(refundID)
        let refund = states[slot].refunds[number - 1]
        guard let t = refund.transactions.firstIndex(where: { $0.tender == tender }) else {
            throw RefundError(.tenderNotFound, "refund \(refundID) has no transaction for tender '\(tender.prefix(128))'")
        }
        if let attempt {
            let current = refund.transactions[t].attempts
            guard attempt >= 1, attempt <= current else {
                throw RefundError(
                    .invalidField,
                    "attempt \(attempt) of tender \(tender) of \(refundID) was never sent (attempts so far: \(current))")
            }
            if attempt != current || !refund.transactions[t].awaitingGateway {
                // An answer for an attempt that is no longer the current one: applied to nothing, recorded as a
                // fact. A success here is money that moved; two successes of one transaction put the refund in
                // the attention queue (duplicate_payment_suspected).
                let answer = LateAnswer(
                    transaction: t, attempt: attempt, succeeded: succeeded, reference: reference,
                    failureCode: succeeded ? nil : failureCode, at: shared.clock.now())
                commit(slot, [.lateAnswer(refund: number, answer)])
                flushJobDeltas()
                return (states[slot].refunds[number - 1], [])
            }
        }
        guard refund.transactions[t].awaitingGateway else {
            throw RefundError(
                .invalidState,
                "transaction for tender \(tender) of \(refundID) is \(refund.transactions[t].status.rawValue), not awaiting the gateway")
        }
        let now = shared.clock.now()
        let result: AttemptResult =
            succeeded
            ? .succeeded(reference: reference)
            : attemptResult(
                .failed(code: failureCode ?? "gateway_failed", retryable: retryable),
                attemptsAfter: refund.transactions[t].attempts, now: now)
        commit(slot, [.settled(refund: number, transaction: t, result: result, at: now)])
        flushJobDeltas()
        return (states[slot].refunds[number - 1], takeDueAttempts(slot, now: now))
    }

    /// `refund.retry`: a failed refund tries its failed transactions again, for the same amounts.
    func retry(_ refundID: String, caller: Caller) throws(RefundError) -> (Refund, [PendingAttempt]) {
        try ensureRunning()
        try caller.require(.refund, for: "retrying a refund")
        let (slot, number) = try locateRefund(refundID)
        let refund = states[slot].refunds[number - 1]
        guard refund.status == .failed else {
            throw RefundError(.invalidState, "refund \(refundID) is \(refund.status.rawValue); only a failed refund can be retried")
        }
        guard refund.recovery == nil else {
            throw RefundError(.invalidState, "refund \(refundID) was recovered (\(refund.recovery?.action.rawValue ?? "")); it cannot be retried")
        }
        let now = shared.clock.now()
        commit(slot, [.retried(refund: number, at: now, by: caller.id)])
        flushJobDeltas()
        // Internal transactions (wallet, balance, offline) never fail, so only card transactions come back.
        return (states[slot].refunds[number - 1], takeDueAttempts(slot, now: now))
    }

    /// `refund.recover`: staff record what they did about a failed refund; it leaves the attention queue (until a
    /// retry fails again). Steps add to the log; `refunded_externally` and `written_off` close the refund.
    func recover(_ refundID: String, action: RecoveryAction, note: String, caller: Caller) throws(RefundError) -> Refund {
        try ensureRunning()
        try caller.require(.recordRecovery, for: "recording a recovery")
        guard !note.isEmpty, note.utf8.count <= 4096 else {
            throw RefundError(.invalidField, "note is required for a recovery (1–4096 bytes)")
        }
        let (slot, number) = try locateRefund(refundID)
        let refund = states[slot].refunds[number - 1]
        // A log: steps (contacted_buyer, other) may be added any number of times while the refund is failed (or
        // suspected of paying twice) and not closed; refunded_externally or written_off closes it.
        if let closed = refund.recovery {
            throw RefundError(
                .invalidState, "refund \(refundID) was closed as \(closed.action.rawValue); no recovery action can follow")
        }
        guard refund.status == .failed || refund.duplicatePaymentSuspected else {
            throw RefundError(
                .invalidState,
                "refund \(refundID) is \(refund.status.rawValue); recovery actions are for a failed refund (or one suspected of paying twice)")
        }
        commit(slot, [.recovered(refund: number, Recovery(action: action, note: note, by: caller.id, at: shared.clock.now()))])
        return states[slot].refunds[number - 1]
    }

    /// `refund.resend`: queue the buyer confirmation again (non-failed refunds of orders with an email).
    func resend(_ refundID: String, caller: Caller) throws(RefundError) -> Refund {
        try ensureRunning()
        try caller.require(.refund, for: "resending a refund confirmation")
        let (slot, number) = try locateRefund(refundID)
        let state = states[slot]
        let refund = state.refunds[number - 1]
        guard refund.status != .failed else {
            throw RefundError(.invalidState, "refund \(refundID) failed; there is no confirmation to resend")
        }
        guard state.order.email != nil else {
            throw RefundError(.invalidState, "order \(state.order.id) has no email to send the confirmation to")
        }
        let now = shared.clock.now()

        commit(slot, [.confirmationResent(refund: number, at: now, by: caller.id)])
        return states[slot].refunds[number - 1]
    }

    func refund(_ refundID: String) throws(RefundError) -> (Refund, Order) {
        let (slot, number) = try locateRefund(refundID)
        return (states[slot].refunds[number - 1], states[slot].order)
    }
}

extension Partition {
    /// The options a refund's change keeps: only when they matter later (an idempotency key to compare
    /// repeats against). The refund itself keeps its notify and email text. Bulk refunds log no options: that
    /// keeps their log records small.
    static func recorded(_ options: RefundOptions) -> RefundOptions? {
        options.idempotencyKey != nil ? options : nil
    }

    /// Attempts that got no answer: no longer in flight, so the scheduler sends them again.
    func releaseInFlight(_ refs: [TransactionRef]) {
        for ref in refs { inFlight.remove(ref) }
    }
}
