/// The state of one money movement, and (derived) of a whole refund.
public enum TransactionStatus: String, Sendable, Codable, Hashable {
    case pending, succeeded, failed
}

/// Where a transaction's money goes: a tender's method, or the customer's balance.
public enum TransactionMethod: String, Sendable, Codable, Hashable {
    case card, wallet, giftCard = "gift_card", cash, bankTransfer = "bank_transfer", other, balance

    public init(_ tender: TenderMethod) {
        switch tender {
        case .card: self = .card
        case .wallet: self = .wallet
        case .giftCard: self = .giftCard
        case .cash: self = .cash
        case .bankTransfer: self = .bankTransfer
        case .other: self = .other
        }
    }
}

/// One failed gateway attempt, kept for the audit trail.
public struct FailedAttempt: Sendable, Equatable, Hashable, Codable {
    public var attempt: Int
    public var at: Timestamp
    public var code: String
    public var retryable: Bool

    public init(attempt: Int, at: Timestamp, code: String, retryable: Bool) {
        self.attempt = attempt
        self.at = at
        self.code = code
        self.retryable = retryable
    }
}

/// One money movement of a refund: one per tender (methods original, offline) or one to the balance.
///
/// Every attempt is kept: `failures` lists each failed attempt; the current attempt (number `attempts`) is the
/// one whose outcome is `status`.
public struct RefundTransaction: Sendable, Equatable, Hashable, Codable {
    /// Tender id; nil for a transaction to the account balance.
    public var tender: String?
    public var method: TransactionMethod
    public var amount: Int64
    public var status: TransactionStatus
    /// Attempts made so far (0 while the first is still to be sent to the gateway).
    public var attempts: Int
    /// When the next automatic attempt is due (pending transactions waiting for a retry or a first send).
    public var nextAttemptAt: Timestamp?
    /// The gateway's reference of the refund, once it gave one.
    public var gatewayRef: String?
    public var failures: [FailedAttempt]
    /// When the status became final.
    public var settledAt: Timestamp?

    public init(
        tender: String?, method: TransactionMethod, amount: Int64, status: TransactionStatus, attempts: Int,
        nextAttemptAt: Timestamp? = nil, gatewayRef: String? = nil, failures: [FailedAttempt] = [],
        settledAt: Timestamp? = nil
    ) {
        self.tender = tender
        self.method = method
        self.amount = amount
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.gatewayRef = gatewayRef
        self.failures = failures
        self.settledAt = settledAt
    }

    /// True while the gateway has been asked and has not answered (as opposed to waiting for a send or retry).
    public var awaitingGateway: Bool { status == .pending && nextAttemptAt == nil }

    enum CodingKeys: String, CodingKey {
        case tender, method, amount, status, attempts, failures
        case nextAttemptAt = "next_attempt_at", gatewayRef = "gateway_ref", settledAt = "settled_at"
    }
}

/// What one line contributed to a refund.
public struct RefundLine: Sendable, Equatable, Hashable, Codable {
    public var line: String
    public var amount: Int64
    public var feeRetained: Int64
    public var tax: Int64

    public init(line: String, amount: Int64, feeRetained: Int64, tax: Int64) {
        self.line = line
        self.amount = amount
        self.feeRetained = feeRetained
        self.tax = tax
    }

    enum CodingKeys: String, CodingKey {
        case line, amount, tax
        case feeRetained = "fee_retained"
    }
}

/// What staff did about a failed refund (contract section 4). `contacted_buyer` and `other` are steps: any number
/// may be recorded, and the refund can still be retried or resolved. `refunded_externally` and `written_off`
/// close it: the money went back outside the engine, or the organiser gave it up; nothing may follow.
public enum RecoveryAction: String, Sendable, Codable, CaseIterable, Hashable {
    case contactedBuyer = "contacted_buyer"
    case refundedExternally = "refunded_externally"
    case writtenOff = "written_off"
    case other

    /// Whether the action settles the refund for good (no retry, no further action after it).
    public var closes: Bool { self == .refundedExternally || self == .writtenOff }
}

public struct Recovery: Sendable, Equatable, Hashable, Codable {
    public var action: RecoveryAction
    public var note: String
    public var by: String
    public var at: Timestamp

    public init(action: RecoveryAction, note: String, by: String, at: Timestamp) {
        self.action = action
        self.note = note
        self.by = by
        self.at = at
    }
}

/// A gateway answer that came for an attempt that was no longer the transaction's current one: a late answer
/// after a retry, or a second answer for an attempt already answered. Applied to nothing; kept on the refund as a
/// fact. A late *success* means money moved for that attempt: together with another success of the same
/// transaction it is a suspected duplicate payment (the refund goes to the attention queue).
public struct LateAnswer: Sendable, Equatable, Hashable, Codable {
    /// The transaction (index in `transactions`).
    public var transaction: Int
    public var attempt: Int
    public var succeeded: Bool
    public var reference: String?
    public var failureCode: String?
    public var at: Timestamp

    public init(transaction: Int, attempt: Int, succeeded: Bool, reference: String?, failureCode: String?, at: Timestamp) {
        self.transaction = transaction
        self.attempt = attempt
        self.succeeded = succeeded
        self.reference = reference
        self.failureCode = failureCode
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case transaction, attempt, succeeded, reference, at
        case failureCode = "failure_code"
    }
}

/// A refund or cancellation of some lines of one order (contract section 4).
public struct Refund: Sendable, Equatable, Hashable, Codable {
    public var id: String
    public var orderID: String
    public var method: RefundMethod
    /// Money returned: Σ lines' amounts + booking fee.
    public var amount: Int64
    public var feeRetained: Int64
    public var tax: Int64
    /// The booking fee included in `amount` (refunded only with the order's last active line).
    public var bookingFee: Int64
    public var reason: String
    public var note: String?
    public var createdAt: Timestamp
    public var createdBy: String
    public var restock: Bool
    public var lines: [RefundLine]
    public var transactions: [RefundTransaction]
    /// Every recovery action recorded (`refund.recover`), oldest first: a log, not a single answer. Steps
    /// (`contacted_buyer`, `other`) may be added any number of times until an action closes the refund.
    public var recoveries: [Recovery]
    /// How many of `recoveries` were recorded before the latest `refund.retry`: those answered an earlier failure,
    /// so a retry that fails again puts the refund back in the attention queue.
    public var recoveriesBeforeRetry: Int
    /// The action that closed the refund (`refunded_externally` or `written_off`); nil while it is open, steps
    /// like `contacted_buyer` included. A closing action is always the last of ``recoveries``.
    public var recovery: Recovery? {
        guard let last = recoveries.last, last.action.closes else { return nil }
        return last
    }
    /// The actions recorded about the refund's current failure (since the latest retry).
    public var currentRecoveries: ArraySlice<Recovery> {
        recoveries[min(max(recoveriesBeforeRetry, 0), recoveries.count)...]
    }
    /// The bulk job that created it, if any.
    public var jobID: String?
    /// The buyer request it approved, if any.
    public var requestID: String?
    /// When the buyer confirmation was sent again (`refund.resend`).
    public var resentAt: [Timestamp]
    /// Answers for superseded attempts (see ``LateAnswer``).
    public var lateAnswers: [LateAnswer] = []
    /// Whether the buyer is to be told (the `notify` option the refund was created with). Every event of the
    /// refund carries it, as it was at creation.
    public var notify: Bool = true
    /// The text for the buyer confirmation given when the refund was created (`email_text`, single or bulk), at
    /// most ``RefundOptions/maxEmailTextBytes`` UTF-8 bytes. Every event of the refund carries it.
    public var emailText: String?

    /// More than one attempt of a transaction succeeded (the current one and a late one, or two late ones): the
    /// buyer may have been paid twice.
    public var duplicatePaymentSuspected: Bool { overRefunded > 0 }

    /// Money that may have gone out beyond the refund: per transaction, the amount times the successful attempts
    /// beyond the first.
    public var overRefunded: Int64 {
        guard !lateAnswers.isEmpty else { return 0 }
        var total: Int64 = 0
        for (index, transaction) in transactions.enumerated() {
            // Distinct attempts that succeeded: a repeated answer for one attempt is one payment (one key).
            var attempts = Set(lateAnswers.filter { $0.transaction == index && $0.succeeded }.map(\.attempt))
            if transaction.status == .succeeded { attempts.insert(transaction.attempts) }
            let successes = attempts.count
            guard successes > 1 else { continue }
            // Saturating: a report, never a money movement; it cannot meaningfully exceed Int64.
            let (extra, overflow) = transaction.amount.multipliedReportingOverflow(by: Int64(successes - 1))
            total.addSaturating(overflow ? Int64.max : extra)
        }
        return total
    }

    public init(
        id: String, orderID: String, method: RefundMethod, amount: Int64, feeRetained: Int64, tax: Int64,
        bookingFee: Int64, reason: String, note: String?, createdAt: Timestamp, createdBy: String, restock: Bool,
        lines: [RefundLine], transactions: [RefundTransaction], recovery: Recovery? = nil, jobID: String? = nil,
        requestID: String? = nil, resentAt: [Timestamp] = [], recoveries: [Recovery] = [], recoveriesBeforeRetry: Int = 0,
        notify: Bool = true, emailText: String? = nil
    ) {
        self.id = id
        self.orderID = orderID
        self.method = method
        self.amount = amount
        self.feeRetained = feeRetained
        self.tax = tax
        self.bookingFee = bookingFee
        self.reason = reason
        self.note = note
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.restock = restock
        self.lines = lines
        self.transactions = transactions
        // `recovery`: a log of one entry (callers from before the log); `recoveries`: the whole log.
        self.recoveries = recovery.map { [$0] + recoveries } ?? recoveries
        self.recoveriesBeforeRetry = recoveriesBeforeRetry
        self.jobID = jobID
        self.requestID = requestID
        self.resentAt = resentAt
        self.notify = notify
        self.emailText = emailText
    }

    /// Derived: failed if any transaction failed, else pending if any is pending, else succeeded.
    public var status: TransactionStatus {
        var pending = false
        for transaction in transactions {
            if transaction.status == .failed { return .failed }
            if transaction.status == .pending { pending = true }
        }
        return pending ? .pending : .succeeded
    }

    /// In the attention queue: failed, or suspected of paying twice, with no recovery action recorded since the
    /// latest retry (and so not closed either).
    public var needsAttention: Bool {
        (status == .failed || duplicatePaymentSuspected) && recovery == nil && currentRecoveries.isEmpty
    }

    /// Why it is in the attention queue.
    public var attentionReason: String? {
        guard needsAttention else { return nil }
        return duplicatePaymentSuspected ? "duplicate_payment_suspected" : "failed"
    }

    enum CodingKeys: String, CodingKey {
        case id, method, amount, tax, reason, note, restock, lines, transactions, recovery, recoveries, status
        case recoveriesBeforeRetry = "recoveries_before_retry"
        case orderID = "order_id", feeRetained = "fee_retained", bookingFee = "booking_fee"
        case createdAt = "created_at", createdBy = "created_by", jobID = "job_id", requestID = "request_id"
        case resentAt = "resent_at", lateAnswers = "late_answers", overRefunded = "over_refunded"
        case attentionReason = "attention_reason"
        case notify, emailText = "email_text"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        orderID = try c.decode(String.self, forKey: .orderID)
        method = try c.decode(RefundMethod.self, forKey: .method)
        amount = try c.decode(Int64.self, forKey: .amount)
        feeRetained = try c.decode(Int64.self, forKey: .feeRetained)
        tax = try c.decode(Int64.self, forKey: .tax)
        bookingFee = try c.decodeIfPresent(Int64.self, forKey: .bookingFee) ?? 0
        reason = try c.decode(String.self, forKey: .reason)
        note = try c.decodeIfPresent(String.self, forKey: .note)
        createdAt = try c.decode(Timestamp.self, forKey: .createdAt)
        createdBy = try c.decodeIfPresent(String.self, forKey: .createdBy) ?? ""
        restock = try c.decodeIfPresent(Bool.self, forKey: .restock) ?? true
        lines = try c.decode([RefundLine].self, forKey: .lines)
        transactions = try c.decode([RefundTransaction].self, forKey: .transactions)
        // `recoveries` is the log; a document from before the log has at most `recovery`.
        if let log = try c.decodeIfPresent([Recovery].self, forKey: .recoveries) {
            recoveries = log
        } else {
            recoveries = try c.decodeIfPresent(Recovery.self, forKey: .recovery).map { [$0] } ?? []
        }
        recoveriesBeforeRetry = try c.decodeIfPresent(Int.self, forKey: .recoveriesBeforeRetry) ?? 0
        jobID = try c.decodeIfPresent(String.self, forKey: .jobID)
        requestID = try c.decodeIfPresent(String.self, forKey: .requestID)
        resentAt = try c.decodeIfPresent([Timestamp].self, forKey: .resentAt) ?? []
        lateAnswers = try c.decodeIfPresent([LateAnswer].self, forKey: .lateAnswers) ?? []
        notify = try c.decodeIfPresent(Bool.self, forKey: .notify) ?? true
        emailText = try c.decodeIfPresent(String.self, forKey: .emailText)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(orderID, forKey: .orderID)
        try c.encode(status, forKey: .status)
        try c.encode(method, forKey: .method)
        try c.encode(amount, forKey: .amount)
        try c.encode(feeRetained, forKey: .feeRetained)
        try c.encode(tax, forKey: .tax)
        try c.encode(bookingFee, forKey: .bookingFee)
        try c.encode(reason, forKey: .reason)
        try c.encode(note, forKey: .note)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(createdBy, forKey: .createdBy)
        try c.encode(restock, forKey: .restock)
        try c.encode(lines, forKey: .lines)
        try c.encode(transactions, forKey: .transactions)
        try c.encodeIfPresent(recovery, forKey: .recovery)
        if !recoveries.isEmpty { try c.encode(recoveries, forKey: .recoveries) }
        if recoveriesBeforeRetry != 0 { try c.encode(recoveriesBeforeRetry, forKey: .recoveriesBeforeRetry) }
        try c.encodeIfPresent(jobID, forKey: .jobID)
        try c.encodeIfPresent(requestID, forKey: .requestID)
        if !resentAt.isEmpty { try c.encode(resentAt, forKey: .resentAt) }
        if !lateAnswers.isEmpty {
            try c.encode(lateAnswers, forKey: .lateAnswers)
            try c.encode(overRefunded, forKey: .overRefunded)
        }
        try c.encodeIfPresent(attentionReason, forKey: .attentionReason)
        // Only when they differ from a plain refund's, so existing answers keep their shape.
        if !notify { try c.encode(notify, forKey: .notify) }
        try c.encodeIfPresent(emailText, forKey: .emailText)
    }
}

/// Refund ids name their order, so a lookup by refund id goes straight to the order's partition:
/// `rf_<n>_<order id>` where n counts the order's refunds from 1, or `rf_<n>r<run>_<order id>` when the engine
/// that made it could have forgotten an acknowledged refund (an fsync policy other than `always`, or a data
/// directory a repair gave something up in): the run number keeps an id a power loss or a repair forgot from ever
/// naming another refund.
public enum RefundID {
    public static func make(order: String, number: Int, run: UInt64? = nil) -> String {
        "rf_\(numbered(number, run: run))_\(order)"
    }

    static func numbered(_ number: Int, run: UInt64?) -> String {
        if let run { "\(number)r\(run)" } else { "\(number)" }
    }

    /// (order id, number, engine run) of a refund id, or nil when it is not one.
    public static func components(_ id: String) -> (order: String, number: Int, run: UInt64?)? {
        guard id.hasPrefix("rf_") else { return nil }
        let rest = id.utf8.dropFirst(3)
        guard let underscore = rest.firstIndex(of: UInt8(ascii: "_")) else { return nil }
        let numbered = rest[rest.startIndex..<underscore]
        let parts = numbered.split(separator: UInt8(ascii: "r"), maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 >= 48 && $0 <= 57 } }),
            let number = Int(Substring(parts[0])), number > 0
        else { return nil }
        var run: UInt64?
        if parts.count == 2 {
            guard let value = UInt64(Substring(parts[1])) else { return nil }
            run = value
        }
        let order = String(Substring(rest[rest.index(after: underscore)...]))
        return order.isEmpty ? nil : (order, number, run)
    }

    /// (order id, number) of a refund id, or nil when it is not one.
    public static func parse(_ id: String) -> (order: String, number: Int)? {
        parseNumbered(id, prefix: "rf_")
    }

    static func parseNumbered(_ id: String, prefix: String) -> (order: String, number: Int)? {
        guard id.hasPrefix(prefix) else { return nil }
        let rest = id.dropFirst(prefix.count)
        guard let underscore = rest.firstIndex(of: "_") else { return nil }
        // "<n>" or "<n>r<run>"; digits only, so "+3" or "03r" never name refund 3.
        let numbered = rest[rest.startIndex..<underscore]
        let parts = numbered.split(separator: "r", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }),
            let number = Int(parts[0]), number > 0, parts.count == 1 || UInt64(parts[1]) != nil
        else { return nil }
        let order = String(rest[rest.index(after: underscore)...])
        return order.isEmpty ? nil : (order, number)
    }
}

/// Buyer request ids: `rq_<n>_<order id>`.
public enum RequestID {
    public static func make(order: String, number: Int, run: UInt64? = nil) -> String {
        "rq_\(RefundID.numbered(number, run: run))_\(order)"
    }
    public static func parse(_ id: String) -> (order: String, number: Int)? {
        RefundID.parseNumbered(id, prefix: "rq_")
    }
}
