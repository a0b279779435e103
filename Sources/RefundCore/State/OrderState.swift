/// Where a line stands.
public enum LineStatus: String, Sendable, Codable, Hashable {
    case active
    /// Refunded with money (or to the balance).
    case refunded
    /// Removed without money (method `none`).
    case cancelled
}

/// Order status (contract section 4).
public enum OrderStatus: String, Sendable, Codable, Hashable {
    case completed
    case partiallyRefunded = "partially_refunded"
    case refunded
    case cancelled
}

/// Money totals of an order. Always `gross = refunded + outstanding + retained + net`.
public struct OrderTotals: Sendable, Equatable, Hashable, Codable {
    /// Everything the buyer paid (Σ tenders).
    public var gross: Int64
    /// Returned or on its way back (succeeded and pending transactions, and failures recovered as
    /// `refunded_externally`).
    public var refunded: Int64
    /// Owed back but failed and not yet recovered (the attention queue).
    public var outstanding: Int64
    /// Kept by the organiser for removed lines: cancellation fees, fees not refunded, lines cancelled
    /// without money, a booking fee not refunded once no line is left, failures written off.
    public var retained: Int64
    /// Still sold: active lines with their fees, and the booking fee while any line is active.
    public var net: Int64
}

/// One order and everything that happened to it: the aggregate a partition keeps per order.
///
/// Mutated only by ``apply(_:)``; every query is derived from it.
///
/// Arithmetic here uses `&+`/`&-` deliberately: every sum is over parts of one order (its lines, fees, booking
/// fee, tenders, and refunds that never exceed its tenders), and `OrderValidation` proved with checked
/// arithmetic that the order's whole total fits in an `Int64`. So none of these can overflow; sums across
/// orders use `CheckedMoney.saturatingAdd`.
public struct OrderState: Sendable, Equatable {
    /// The fields live in one copy-on-write box: copying an OrderState (passing it to the planner, returning it
    /// from a partition) is one retain instead of one per field, which the bulk path does for every order.
    @usableFromInline
    final class Storage: @unchecked Sendable {
        // @unchecked: mutated only through `OrderState.box` after a uniqueness check (copy-on-write), so a
        // Storage shared between values is never written.
        var order: Order
        var lineStatus: [LineStatus]
        var tenderRefunded: [Int64]
        var refunds: [Refund]
        var bookingFeeRefunded: Bool
        var disputes: [Dispute]
        var requests: [RefundRequest]
        var timeline: [TimelineEntry]
        var idempotency: [String: IdempotentRefund]
        var placedAt: Timestamp
        var transfers: [TicketTransfer]

        init(
            order: Order, lineStatus: [LineStatus], tenderRefunded: [Int64], refunds: [Refund], bookingFeeRefunded: Bool,
            disputes: [Dispute], requests: [RefundRequest], timeline: [TimelineEntry],
            idempotency: [String: IdempotentRefund], placedAt: Timestamp, transfers: [TicketTransfer]
        ) {
            self.order = order
            self.lineStatus = lineStatus
            self.tenderRefunded = tenderRefunded
            self.refunds = refunds
            self.bookingFeeRefunded = bookingFeeRefunded
            self.disputes = disputes
            self.requests = requests
            self.timeline = timeline
            self.idempotency = idempotency
            self.placedAt = placedAt
            self.transfers = transfers
        }

        func copy() -> Storage {
            Storage(
                order: order, lineStatus: lineStatus, tenderRefunded: tenderRefunded, refunds: refunds,
                bookingFeeRefunded: bookingFeeRefunded, disputes: disputes, requests: requests, timeline: timeline,
                idempotency: idempotency, placedAt: placedAt, transfers: transfers)
        }
    }

    private var storage: Storage

    /// The box, made unique first: every mutation goes through here.
    private var box: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
            return storage
        }
    }

    public private(set) var order: Order {
        get { storage.order }
        _modify { yield &box.order }
    }
    public private(set) var lineStatus: [LineStatus] {
        get { storage.lineStatus }
        _modify { yield &box.lineStatus }
    }
    /// Per tender: amount claimed by refunds: returned, on its way, or owed by a failed transaction (which a
    /// retry sends again for the same amount).
    public private(set) var tenderRefunded: [Int64] {
        get { storage.tenderRefunded }
        _modify { yield &box.tenderRefunded }
    }
    public private(set) var refunds: [Refund] {
        get { storage.refunds }
        _modify { yield &box.refunds }
    }
    public private(set) var bookingFeeRefunded: Bool {
        get { storage.bookingFeeRefunded }
        _modify { yield &box.bookingFeeRefunded }
    }
    public private(set) var disputes: [Dispute] {
        get { storage.disputes }
        _modify { yield &box.disputes }
    }
    public private(set) var requests: [RefundRequest] {
        get { storage.requests }
        _modify { yield &box.requests }
    }
    public private(set) var timeline: [TimelineEntry] {
        get { storage.timeline }
        _modify { yield &box.timeline }
    }
    /// Idempotency keys of this order's refunds: key → (options, refund number). Keys are scoped per order.
    public private(set) var idempotency: [String: IdempotentRefund] {
        get { storage.idempotency }
        _modify { yield &box.idempotency }
    }
    public var placedAt: Timestamp { storage.placedAt }
    /// Every ticket transfer of the order, oldest first (`order.transfer`): who, when, from and to which holder.
    public private(set) var transfers: [TicketTransfer] {
        get { storage.transfers }
        _modify { yield &box.transfers }
    }

    public static func == (lhs: OrderState, rhs: OrderState) -> Bool {
        if lhs.storage === rhs.storage { return true }
        let a = lhs.storage
        let b = rhs.storage
        return a.order == b.order && a.lineStatus == b.lineStatus && a.tenderRefunded == b.tenderRefunded
            && a.refunds == b.refunds && a.bookingFeeRefunded == b.bookingFeeRefunded && a.disputes == b.disputes
            && a.requests == b.requests && a.timeline == b.timeline && a.idempotency == b.idempotency
            && a.placedAt == b.placedAt && a.transfers == b.transfers
    }

    public struct IdempotentRefund: Sendable, Equatable {
        public var options: RefundOptions
        public var refund: Int

        public init(options: RefundOptions, refund: Int) {
            self.options = options
            self.refund = refund
        }
    }

    public init(placing order: Order, at: Timestamp, by: String) {
        storage = Storage(
            order: order, lineStatus: [LineStatus](repeating: .active, count: order.lines.count),
            tenderRefunded: [Int64](repeating: 0, count: order.tenders.count), refunds: [], bookingFeeRefunded: false,
            disputes: [], requests: [], timeline: [TimelineEntry(at: at, kind: .orderPlaced, by: by)], idempotency: [:],
            placedAt: at, transfers: [])
    }

    /// Restores a state exactly as it was saved (snapshots; see ``OrderStateCodec``). Nothing is derived or checked
    /// here: `lineStatus` must have one entry per order line and `tenderRefunded` one per tender.
    public init(
        restoring order: Order, lineStatus: [LineStatus], tenderRefunded: [Int64], refunds: [Refund],
        bookingFeeRefunded: Bool, disputes: [Dispute], requests: [RefundRequest], timeline: [TimelineEntry],
        idempotency: [String: IdempotentRefund], placedAt: Timestamp, transfers: [TicketTransfer] = []
    ) {
        storage = Storage(
            order: order, lineStatus: lineStatus, tenderRefunded: tenderRefunded, refunds: refunds,
            bookingFeeRefunded: bookingFeeRefunded, disputes: disputes, requests: requests, timeline: timeline,
            idempotency: idempotency, placedAt: placedAt, transfers: transfers)
    }

    /// The balance and inventory effects of placing `order` (top-ups credit, wallet spending debits).
    public static func placementEffects(of order: Order) -> ChangeEffects {
        var effects = ChangeEffects(customer: order.customer, currency: order.currency.code)
        guard order.customer != nil else { return effects }
        for line in order.lines where line.kind == .walletTopUp { effects.balanceDelta &+= line.paidValue }
        for tender in order.tenders where tender.method == .wallet { effects.balanceDelta &-= tender.amount }
        return effects
    }

    // MARK: Derived facts

    public var hasPendingTransaction: Bool {
        for refund in refunds {
            for transaction in refund.transactions where transaction.status == .pending { return true }
        }
        return false
    }

    /// The derived status of refund `number` (1-based), read in place.
    public func refundStatus(number: Int) -> TransactionStatus? {
        number >= 1 && number <= refunds.count ? refunds[number - 1].status : nil
    }

    public var openDispute: Dispute? { disputes.last.flatMap { $0.isOpen ? $0 : nil } }

    public var activeLineCount: Int { lineStatus.reduce(0) { $0 + ($1 == .active ? 1 : 0) } }

    /// Σ over tenders of what is left to refund.
    public var totalRemaining: Int64 {
        var total: Int64 = 0
        for i in tenderRefunded.indices { total &+= order.tenders[i].amount &- tenderRefunded[i] }
        return total
    }

    public var tenderRemaining: [Int64] {
        var remaining = tenderRefunded
        for i in remaining.indices { remaining[i] = order.tenders[i].amount &- tenderRefunded[i] }
        return remaining
    }

    /// Every line is refunded or cancelled and no money is pending or failed: a parent may go.
    public var isFullyRefunded: Bool {
        lineStatus.allSatisfy { $0 != .active } && !refunds.contains { $0.status != .succeeded && $0.recovery == nil }
    }

    public var status: OrderStatus {
        var active = 0
        var refunded = 0
        for status in lineStatus {
            switch status {
            case .active: active += 1
            case .refunded: refunded += 1
            case .cancelled: break
            }
        }
        if active == lineStatus.count { return .completed }
        if active > 0 { return .partiallyRefunded }
        return refunded > 0 ? .refunded : .cancelled
    }

    public func refund(number: Int) -> Refund? {
        number >= 1 && number <= refunds.count ? refunds[number - 1] : nil
    }

    public var totals: OrderTotals {
        var gross: Int64 = 0
        for tender in order.tenders { gross &+= tender.amount }
        var refunded: Int64 = 0
        var outstanding: Int64 = 0
        var writtenOff: Int64 = 0
        for refund in refunds {
            for transaction in refund.transactions {
                switch transaction.status {
                case .pending, .succeeded: refunded &+= transaction.amount
                case .failed:
                    switch refund.recovery?.action {
                    case .refundedExternally?: refunded &+= transaction.amount
                    case .writtenOff?: writtenOff &+= transaction.amount
                    default: outstanding &+= transaction.amount
                    }
                }
            }
        }
        var net: Int64 = 0
        var removedValue: Int64 = 0
        for (i, line) in order.lines.enumerated() {
            let value = line.paidValue &+ line.processingFee &+ line.platformFee
            if lineStatus[i] == .active { net &+= value } else { removedValue &+= value }
        }
        let anyActive = lineStatus.contains(.active)
        if anyActive {
            net &+= order.bookingFee
        } else {
            removedValue &+= order.bookingFee
        }
        // What was removed and not sent back is retained: fees kept, lines cancelled without money, booking fee.
        var sentBack: Int64 = 0
        for refund in refunds { sentBack &+= refund.amount }
        let retained = removedValue &- sentBack &+ writtenOff
        return OrderTotals(gross: gross, refunded: refunded, outstanding: outstanding, retained: retained, net: net)
    }

    // MARK: Applying changes

    /// Applies a decided change. Cannot fail: every change was validated when it was decided.
    @discardableResult
    public mutating func apply(_ change: OrderChange) -> ChangeEffects {
        var effects = ChangeEffects(customer: order.customer, currency: order.currency.code)
        switch change {
        case .placed(let order, let at, let by):
            self = OrderState(placing: order, at: at, by: by)
            return OrderState.placementEffects(of: order)

        case .replaced(let newOrder, let at, let by):
            let old = OrderState.placementEffects(of: order)
            let new = OrderState.placementEffects(of: newOrder)
            let oldEvent = order.event
            let oldTimeline = timeline
            let oldDisputes = disputes
            let oldRequests = requests
            let oldTransfers = transfers
            self = OrderState(placing: newOrder, at: placedAt, by: by)
            // A replacement changes what was sold, not what happened to the order: disputes, buyer requests and
            // ticket transfers stay (the new order's lines say who holds each ticket now).
            disputes = oldDisputes
            requests = oldRequests
            transfers = oldTransfers
            timeline = oldTimeline + [TimelineEntry(at: at, kind: .orderReplaced, by: by)]
            effects = new
            if old.customer == new.customer, old.currency == new.currency {
                effects.balanceDelta = new.balanceDelta &- old.balanceDelta
            } else {
                effects.previousCustomer = old.customer
                effects.previousCurrency = old.currency
                effects.previousBalanceDelta = 0 &- old.balanceDelta
            }
            if oldEvent != newOrder.event { effects.movedFromEvent = oldEvent }
            return effects

        case .refundCreated(let refund, let options):
            let number = refunds.count + 1
            let lineMark: LineStatus = refund.method == .none ? .cancelled : .refunded
            for refundLine in refund.lines {
                guard let index = order.lineIndex(refundLine.line) else { continue }
                lineStatus[index] = lineMark
                let line = order.lines[index]
                if refund.restock, line.kind == .ticket, let ticketType = line.ticketType {
                    effects.released.append(ticketType)
                }
                // A removed top-up takes its credit back, whatever the method: with `none` no money goes back, but
                // the credit the top-up gave must not stay spendable either.
                if line.kind == .walletTopUp, order.customer != nil {
                    effects.balanceDelta &-= line.paidValue
                }
            }
            if refund.bookingFee > 0 { bookingFeeRefunded = true }
            if refund.method == .balance, refund.amount > 0 {
                // Money moved to the balance comes out of the captured tenders, split by what each has left, so
                // no later refund can send it back to a tender too. Deterministic: replay gives the same split.
                let remaining = tenderRemaining
                var total: Int64 = 0
                for value in remaining { total &+= value }
                if total >= refund.amount {
                    let shares = Allocation.splitUnchecked(refund.amount, by: remaining, total: total)
                    for i in shares.indices { tenderRefunded[i] &+= shares[i] }
                }
            }
            for transaction in refund.transactions {
                if transaction.status != .failed, let tender = transaction.tender,
                    let index = order.tenders.firstIndex(where: { $0.id == tender })
                {
                    tenderRefunded[index] &+= transaction.amount
                }
                // Wallet shares of `original` refunds and `balance` refunds credit the account balance; `offline`
                // money is handed back outside the engine, so it credits nothing.
                if refund.method != .offline, transaction.method == .wallet || transaction.method == .balance {
                    effects.balanceDelta &+= transaction.amount
                }
            }
            refunds.append(refund)
            if let options, let key = options.idempotencyKey {
                idempotency[key] = IdempotentRefund(options: options.withoutIdempotencyKey, refund: number)
            }
            timeline.append(
                TimelineEntry(
                    at: refund.createdAt, kind: refund.method == .none ? .cancellationCreated : .refundCreated,
                    by: refund.createdBy, refundID: refund.id, detail: refund.reason))
            return effects

        case .attemptResult(let number, let index, let result, let at):
            applyResult(refund: number, transaction: index, result: result, at: at, countsAsAttempt: true)
            return effects

        case .settled(let number, let index, let result, let at):
            applyResult(refund: number, transaction: index, result: result, at: at, countsAsAttempt: false)
            return effects

        case .retried(let number, let at, let by):
            let r = number - 1
            for t in refunds[r].transactions.indices where refunds[r].transactions[t].status == .failed {
                refunds[r].transactions[t].status = .pending
                refunds[r].transactions[t].nextAttemptAt = at
                refunds[r].transactions[t].settledAt = nil
            }
            // Recovery actions so far answered the failure this retry ends; a new failure needs attention again.
            refunds[r].recoveriesBeforeRetry = refunds[r].recoveries.count
            timeline.append(TimelineEntry(at: at, kind: .refundRetried, by: by, refundID: refunds[r].id))
            return effects

        case .recovered(let number, let recovery):
            refunds[number - 1].recoveries.append(recovery)
            timeline.append(
                TimelineEntry(
                    at: recovery.at, kind: .refundRecovered, by: recovery.by, refundID: refunds[number - 1].id,
                    detail: "\(recovery.action.rawValue): \(recovery.note)"))
            return effects

        case .disputeOpened(let reason, let at, let by):
            disputes.append(Dispute(reason: reason, openedAt: at, openedBy: by))
            timeline.append(TimelineEntry(at: at, kind: .disputeOpened, by: by, detail: reason))
            return effects

        case .disputeClosed(let outcome, let note, let at, let by):
            if let last = disputes.indices.last {
                disputes[last].outcome = outcome
                disputes[last].note = note
                disputes[last].closedAt = at
                disputes[last].closedBy = by
            }
            timeline.append(TimelineEntry(at: at, kind: .disputeClosed, by: by, detail: outcome.rawValue))
            return effects

        case .requestCreated(let request):
            requests.append(request)
            timeline.append(
                TimelineEntry(at: request.createdAt, kind: .requestCreated, by: request.requestedBy, detail: request.reason))
            return effects

        case .requestDecided(let number, let approved, let note, let refundID, let at, let by):
            let r = number - 1
            requests[r].status = approved ? .approved : .declined
            requests[r].adminNote = note
            requests[r].decidedAt = at
            requests[r].decidedBy = by
            requests[r].refundID = refundID
            timeline.append(
                TimelineEntry(
                    at: at, kind: approved ? .requestApproved : .requestDeclined, by: by, refundID: refundID,
                    detail: note))
            return effects

        case .confirmationResent(let number, let at, let by):
            refunds[number - 1].resentAt.append(at)
            timeline.append(TimelineEntry(at: at, kind: .confirmationResent, by: by, refundID: refunds[number - 1].id))
            return effects

        case .lateAnswer(let number, let answer):
            refunds[number - 1].lateAnswers.append(answer)
            timeline.append(
                TimelineEntry(
                    at: answer.at, kind: .lateAnswer, by: nil, refundID: refunds[number - 1].id,
                    detail: "attempt \(answer.attempt) \(answer.succeeded ? "succeeded" : "failed")\(answer.reference.map { " \($0)" } ?? "")"))
            return effects

        case .factsUpdated(let update, let at, let by):
            // Facts that are not money: no balance, inventory or line status moves.
            order = update.applied(to: order)
            timeline.append(TimelineEntry(at: at, kind: .orderUpdated, by: by, detail: update.summary))
            return effects

        case .ticketTransferred(let transfer):
            // Who attends, not who is refunded: no balance, inventory or line status moves. Away from the
            // purchaser the line is transferred (its refund is blocked); back with them it is not. A pending
            // transfer moves nothing yet.
            guard let index = order.lineIndex(transfer.line) else { return effects }
            transfers.append(transfer)
            let pending = transfer.status == .pending
            if !pending { move(line: index, to: transfer.to) }
            timeline.append(
                TimelineEntry(
                    at: transfer.at, kind: pending ? .transferPending : .ticketTransferred, by: transfer.by,
                    detail: "\(transfer.line): \(transfer.from ?? "purchaser") → \(transfer.to ?? "purchaser")"))
            return effects

        case .transferDecided(let line, let accepted, let at, let by):
            guard let waiting = pendingTransfer(line: line), let index = order.lineIndex(line) else { return effects }
            transfers[waiting].status = accepted ? .completed : .cancelled
            transfers[waiting].decidedAt = at
            transfers[waiting].decidedBy = by
            let transfer = transfers[waiting]
            if accepted { move(line: index, to: transfer.to) }
            timeline.append(
                TimelineEntry(
                    at: at, kind: accepted ? .ticketTransferred : .transferCancelled, by: by,
                    detail: "\(line): \(transfer.from ?? "purchaser") → \(transfer.to ?? "purchaser")"))
            return effects
        }
    }

    /// The ticket on line `index` is now held by `holder` (nil: the purchaser).
    private mutating func move(line index: Int, to holder: String?) {
        var moved = order
        moved.lines[index].holder = holder
        moved.lines[index].transferred = holder != nil
        order = moved
    }

    /// The index in ``transfers`` of the transfer pending on line `line`, if one is.
    public func pendingTransfer(line: String) -> Int? {
        guard !transfers.isEmpty else { return nil }
        return transfers.lastIndex { $0.line == line && $0.status == .pending }
    }

    private mutating func applyResult(
        refund number: Int, transaction index: Int, result: AttemptResult, at: Timestamp, countsAsAttempt: Bool
    ) {
        let r = number - 1
        var transaction = refunds[r].transactions[index]
        if case .unknown(let reason, let retryAt) = result {
            // Not an answer: the same attempt (the same key) goes again at retryAt.
            transaction.nextAttemptAt = retryAt
            refunds[r].transactions[index] = transaction
            timeline.append(
                TimelineEntry(at: at, kind: .attemptUnknown, by: nil, refundID: refunds[r].id, detail: reason))
            return
        }
        if countsAsAttempt { transaction.attempts += 1 }
        let refundID = refunds[r].id
        switch result {
        case .succeeded(let reference):
            transaction.status = .succeeded
            transaction.nextAttemptAt = nil
            transaction.settledAt = at
            if let reference { transaction.gatewayRef = reference }
            timeline.append(TimelineEntry(at: at, kind: .attemptSucceeded, by: nil, refundID: refundID, detail: transaction.tender))
        case .accepted(let reference):
            transaction.nextAttemptAt = nil
            if let reference { transaction.gatewayRef = reference }
            timeline.append(TimelineEntry(at: at, kind: .attemptAccepted, by: nil, refundID: refundID, detail: transaction.tender))
        case .failed(let code, let retryable, let retryAt):
            transaction.failures.append(
                FailedAttempt(attempt: max(transaction.attempts, 1), at: at, code: code, retryable: retryable))
            if let retryAt {
                transaction.nextAttemptAt = retryAt
                timeline.append(
                    TimelineEntry(at: at, kind: .retryScheduled, by: nil, refundID: refundID, detail: code))
            } else {
                transaction.status = .failed
                transaction.nextAttemptAt = nil
                transaction.settledAt = at
                // The tender's share stays claimed: the money is still owed to it (retry) or dealt with outside
                // (recovery). Releasing it would let a later refund send the same money to the tender again.
                timeline.append(TimelineEntry(at: at, kind: .attemptFailed, by: nil, refundID: refundID, detail: code))
            }
        case .unknown:
            break  // handled above
        }
        refunds[r].transactions[index] = transaction
    }
}
