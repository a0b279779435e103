/// Binary encoding of the model values, shared by ``ChangeCodec`` and ``OrderStateCodec``.
///
/// Field rules: amounts (`Int64`) are `svarint`; other integers (`Int`: attempt counts, refund numbers) are
/// `svarint` too, so every value round-trips; array lengths are `uvarint`; timestamps are `svarint`
/// milliseconds; enums are one byte from the explicit tables in `ChangeCodec+Codes.swift`; an optional is a
/// `bool` presence flag followed by the value; a currency is its ISO 4217 code string. Fields are written in
/// declaration order. Dictionaries and sets are written in ascending key order, and decoding insists on that
/// order (no duplicates), so every value has exactly one encoding.

// MARK: - Primitive helpers

extension ByteSink {
    @inline(__always)
    mutating func int(_ value: Int) { svarint(Int64(value)) }

    @inline(__always)
    mutating func length(_ value: Int) { uvarint(UInt64(value)) }

    @inline(__always)
    mutating func timestamp(_ value: Timestamp) { svarint(value.milliseconds) }

    @inline(__always)
    mutating func optionalTimestamp(_ value: Timestamp?) {
        if let value {
            bool(true)
            svarint(value.milliseconds)
        } else {
            bool(false)
        }
    }

    mutating func optionalStrings(_ value: [String]?) {
        guard let value else { return bool(false) }
        bool(true)
        length(value.count)
        for item in value { string(item) }
    }

    mutating func currency(_ value: Currency) { string(value.code) }
}

extension BinaryReader {
    /// One enum code byte mapped through `table`; an unknown code is an error naming `what`.
    @inline(__always)
    mutating func code<T>(_ what: String, _ table: (UInt8) -> T?) throws(BinaryDecodingError) -> T {
        let start = offset
        let raw = try u8()
        guard let value = table(raw) else {
            throw BinaryDecodingError(message: "unknown \(what) code \(raw)", offset: start)
        }
        return value
    }

    /// An array length. Every element takes at least one byte, so a length above the bytes that remain is
    /// corrupt (and is rejected before anything is allocated for it).
    mutating func length(_ what: String) throws(BinaryDecodingError) -> Int {
        let start = offset
        let raw = try uvarint()
        guard raw <= UInt64(remaining) else {
            throw BinaryDecodingError(
                message: "\(what) count \(raw) exceeds the \(remaining) remaining bytes", offset: start)
        }
        return Int(raw)
    }

    mutating func int(_ what: String) throws(BinaryDecodingError) -> Int {
        let start = offset
        let raw = try svarint()
        guard let value = Int(exactly: raw) else {
            throw BinaryDecodingError(message: "\(what) \(raw) does not fit in Int", offset: start)
        }
        return value
    }

    @inline(__always)
    mutating func timestamp() throws(BinaryDecodingError) -> Timestamp {
        Timestamp(milliseconds: try svarint())
    }

    mutating func optionalTimestamp() throws(BinaryDecodingError) -> Timestamp? {
        try bool() ? Timestamp(milliseconds: try svarint()) : nil
    }

    mutating func optionalStrings(_ what: String) throws(BinaryDecodingError) -> [String]? {
        guard try bool() else { return nil }
        let n = try length(what)
        var result: [String] = []
        result.reserveCapacity(BinaryReader.reservation(for: n))
        for _ in 0..<n { result.append(try string()) }
        return result
    }

    mutating func currency() throws(BinaryDecodingError) -> Currency {
        let start = offset
        let code = try string()
        guard let currency = Currency(code: code) else {
            throw BinaryDecodingError(message: "unknown currency '\(code.prefix(16))'", offset: start)
        }
        return currency
    }
}

// MARK: - Order

extension ByteSink {
    /// `holder`: write the line's holder (every current encoding does; `false` only to write data of the versions
    /// before holders, for compatibility tests).
    mutating func write(_ line: OrderLine, holder: Bool = true) {
        string(line.id)
        u8(line.kind.wireCode)
        optionalString(line.ticketType)
        svarint(line.price)
        svarint(line.discount)
        svarint(line.tax)
        svarint(line.processingFee)
        svarint(line.platformFee)
        bool(line.transferred)
        bool(line.claimed)
        if holder { optionalString(line.holder) }  // change records from version 3, order states from version 4
    }

    /// `withStatus`: every current encoding writes it; `false` only to write older data for compatibility tests.
    mutating func write(_ transfer: TicketTransfer, withStatus: Bool = true) {
        string(transfer.line)
        optionalString(transfer.from)
        optionalString(transfer.to)
        timestamp(transfer.at)
        string(transfer.by)
        guard withStatus else { return }
        u8(transfer.status.wireCode)
        optionalTimestamp(transfer.decidedAt)
        optionalString(transfer.decidedBy)
    }

    mutating func write(_ tender: Tender) {
        string(tender.id)
        u8(tender.method.wireCode)
        svarint(tender.amount)
        optionalString(tender.gatewayRef)
    }

    mutating func write(_ order: Order, holders: Bool = true) {
        string(order.id)
        string(order.event)
        optionalTimestamp(order.eventStartsAt)
        optionalString(order.customer)
        optionalString(order.email)
        currency(order.currency)
        u8(order.channel.wireCode)
        u8(order.source.wireCode)
        optionalString(order.parent)
        bool(order.frozen)
        bool(order.syncPending)
        svarint(order.bookingFee)
        length(order.lines.count)
        for line in order.lines { write(line, holder: holders) }
        length(order.tenders.count)
        for tender in order.tenders { write(tender) }
    }
}

extension BinaryReader {
    /// `withHolder`: the data holds the line's holder (change records from version 3, order states from 4).
    mutating func readOrderLine(withHolder: Bool) throws(BinaryDecodingError) -> OrderLine {
        OrderLine(
            id: try string(), kind: try code("line kind", LineKind.init(wireCode:)), ticketType: try optionalString(),
            price: try svarint(), discount: try svarint(), tax: try svarint(), processingFee: try svarint(),
            platformFee: try svarint(), transferred: try bool(), claimed: try bool(),
            holder: withHolder ? try optionalString() : nil)
    }

    /// `withStatus`: the data holds the transfer's status and decision (change records from version 4, order
    /// states from version 5); before, every transfer was completed when made.
    mutating func readTicketTransfer(withStatus: Bool) throws(BinaryDecodingError) -> TicketTransfer {
        let transfer = TicketTransfer(
            line: try string(), from: try optionalString(), to: try optionalString(), at: try timestamp(), by: try string())
        guard withStatus else { return transfer }
        var decided = transfer
        decided.status = try code("transfer status", TicketTransfer.Status.init(wireCode:))
        decided.decidedAt = try optionalTimestamp()
        decided.decidedBy = try optionalString()
        return decided
    }

    mutating func readTender() throws(BinaryDecodingError) -> Tender {
        Tender(
            id: try string(), method: try code("tender method", TenderMethod.init(wireCode:)), amount: try svarint(),
            gatewayRef: try optionalString())
    }

    mutating func readOrder(withHolders: Bool) throws(BinaryDecodingError) -> Order {
        let id = try string()
        let event = try string()
        let eventStartsAt = try optionalTimestamp()
        let customer = try optionalString()
        let email = try optionalString()
        let currency = try currency()
        let channel = try code("channel", Channel.init(wireCode:))
        let source = try code("order source", OrderSource.init(wireCode:))
        let parent = try optionalString()
        let frozen = try bool()
        let syncPending = try bool()
        let bookingFee = try svarint()
        let lineCount = try length("order line")
        var lines: [OrderLine] = []
        lines.reserveCapacity(BinaryReader.reservation(for: lineCount))
        for _ in 0..<lineCount { lines.append(try readOrderLine(withHolder: withHolders)) }
        let tenderCount = try length("tender")
        var tenders: [Tender] = []
        tenders.reserveCapacity(BinaryReader.reservation(for: tenderCount))
        for _ in 0..<tenderCount { tenders.append(try readTender()) }
        return Order(
            id: id, event: event, eventStartsAt: eventStartsAt, customer: customer, email: email, currency: currency,
            channel: channel, source: source, parent: parent, frozen: frozen, syncPending: syncPending,
            bookingFee: bookingFee, lines: lines, tenders: tenders)
    }
}

// MARK: - Refund

extension ByteSink {
    mutating func write(_ line: RefundLine) {
        string(line.line)
        svarint(line.amount)
        svarint(line.feeRetained)
        svarint(line.tax)
    }

    mutating func write(_ failure: FailedAttempt) {
        int(failure.attempt)
        timestamp(failure.at)
        string(failure.code)
        bool(failure.retryable)
    }

    mutating func write(_ transaction: RefundTransaction) {
        optionalString(transaction.tender)
        u8(transaction.method.wireCode)
        svarint(transaction.amount)
        u8(transaction.status.wireCode)
        int(transaction.attempts)
        optionalTimestamp(transaction.nextAttemptAt)
        optionalString(transaction.gatewayRef)
        length(transaction.failures.count)
        for failure in transaction.failures { write(failure) }
        optionalTimestamp(transaction.settledAt)
    }

    mutating func write(_ recovery: Recovery) {
        u8(recovery.action.wireCode)
        string(recovery.note)
        string(recovery.by)
        timestamp(recovery.at)
    }

    /// A refund's recovery log, in the slot that held one optional recovery before the log existed, so that old
    /// bytes read the same: `u8 0` (no action), `u8 1` + one Recovery (one action, recorded before any retry: the
    /// only shapes older data has), or `u8 2` + uvarint count + Recovery… + uvarint recoveries-before-retry for
    /// every other log (two or more actions, or actions followed by a retry).
    mutating func write(recoveries: [Recovery], beforeRetry: Int) {
        if recoveries.isEmpty, beforeRetry == 0 {
            u8(RecoveryLogTag.none)
        } else if recoveries.count == 1, beforeRetry == 0 {
            u8(RecoveryLogTag.one)
            write(recoveries[0])
        } else {
            u8(RecoveryLogTag.log)
            length(recoveries.count)
            for recovery in recoveries { write(recovery) }
            length(beforeRetry)
        }
    }

    /// A refund. Since change records version 2 and order states version 3 it ends with the buyer notice it was
    /// created with: `bool notify`, then `optional string email text` (at most
    /// ``RefundOptions/maxEmailTextBytes`` bytes); older data has neither.
    mutating func write(_ refund: Refund) {
        string(refund.id)
        string(refund.orderID)
        u8(refund.method.wireCode)
        svarint(refund.amount)
        svarint(refund.feeRetained)
        svarint(refund.tax)
        svarint(refund.bookingFee)
        string(refund.reason)
        optionalString(refund.note)
        timestamp(refund.createdAt)
        string(refund.createdBy)
        bool(refund.restock)
        length(refund.lines.count)
        for line in refund.lines { write(line) }
        length(refund.transactions.count)
        for transaction in refund.transactions { write(transaction) }
        write(recoveries: refund.recoveries, beforeRetry: refund.recoveriesBeforeRetry)
        optionalString(refund.jobID)
        optionalString(refund.requestID)
        length(refund.resentAt.count)
        for at in refund.resentAt { timestamp(at) }
        bool(refund.notify)
        optionalString(refund.emailText)
    }
}

extension BinaryReader {
    mutating func readRefundLine() throws(BinaryDecodingError) -> RefundLine {
        RefundLine(line: try string(), amount: try svarint(), feeRetained: try svarint(), tax: try svarint())
    }

    mutating func readFailedAttempt() throws(BinaryDecodingError) -> FailedAttempt {
        FailedAttempt(attempt: try int("attempt"), at: try timestamp(), code: try string(), retryable: try bool())
    }

    mutating func readRefundTransaction() throws(BinaryDecodingError) -> RefundTransaction {
        let tender = try optionalString()
        let method = try code("transaction method", TransactionMethod.init(wireCode:))
        let amount = try svarint()
        let status = try code("transaction status", TransactionStatus.init(wireCode:))
        let attempts = try int("attempts")
        let nextAttemptAt = try optionalTimestamp()
        let gatewayRef = try optionalString()
        let failureCount = try length("failed attempt")
        var failures: [FailedAttempt] = []
        failures.reserveCapacity(BinaryReader.reservation(for: failureCount))
        for _ in 0..<failureCount { failures.append(try readFailedAttempt()) }
        let settledAt = try optionalTimestamp()
        return RefundTransaction(
            tender: tender, method: method, amount: amount, status: status, attempts: attempts,
            nextAttemptAt: nextAttemptAt, gatewayRef: gatewayRef, failures: failures, settledAt: settledAt)
    }

    mutating func readRecovery() throws(BinaryDecodingError) -> Recovery {
        Recovery(
            action: try code("recovery action", RecoveryAction.init(wireCode:)), note: try string(), by: try string(),
            at: try timestamp())
    }

    /// See ``ByteSink/write(recoveries:beforeRetry:)``. Strict: a log written with tag 2 that tags 0 or 1 would
    /// hold is non-canonical, and recoveries-before-retry cannot exceed the log.
    mutating func readRecoveryLog() throws(BinaryDecodingError) -> (recoveries: [Recovery], beforeRetry: Int) {
        let start = offset
        switch try u8() {
        case RecoveryLogTag.none:
            return ([], 0)
        case RecoveryLogTag.one:
            return ([try readRecovery()], 0)
        case RecoveryLogTag.log:
            let count = try length("recovery")
            var recoveries: [Recovery] = []
            recoveries.reserveCapacity(BinaryReader.reservation(for: count))
            for _ in 0..<count { recoveries.append(try readRecovery()) }
            let markStart = offset
            let rawMark = try uvarint()
            guard rawMark <= UInt64(count) else {
                throw BinaryDecodingError(
                    message: "recoveries before retry \(rawMark) exceeds the \(count) recorded", offset: markStart)
            }
            let beforeRetry = Int(rawMark)
            guard count >= 2 || beforeRetry > 0 else {
                throw BinaryDecodingError(message: "non-canonical recovery log (\(count) action, none retried)", offset: start)
            }
            return (recoveries, beforeRetry)
        case let other:
            throw BinaryDecodingError(message: "unknown recovery log tag \(other)", offset: start)
        }
    }

    /// `withNotice`: the data holds the refund's notify and email text (change records from version 2, order
    /// states from version 3); without it, notify is true and there is no text (the caller may know better).
    mutating func readRefund(withNotice: Bool) throws(BinaryDecodingError) -> Refund {
        let id = try string()
        let orderID = try string()
        let method = try code("refund method", RefundMethod.init(wireCode:))
        let amount = try svarint()
        let feeRetained = try svarint()
        let tax = try svarint()
        let bookingFee = try svarint()
        let reason = try string()
        let note = try optionalString()
        let createdAt = try timestamp()
        let createdBy = try string()
        let restock = try bool()
        let lineCount = try length("refund line")
        var lines: [RefundLine] = []
        lines.reserveCapacity(BinaryReader.reservation(for: lineCount))
        for _ in 0..<lineCount { lines.append(try readRefundLine()) }
        let transactionCount = try length("transaction")
        var transactions: [RefundTransaction] = []
        transactions.reserveCapacity(BinaryReader.reservation(for: transactionCount))
        for _ in 0..<transactionCount { transactions.append(try readRefundTransaction()) }
        let (recoveries, recoveriesBeforeRetry) = try readRecoveryLog()
        let jobID = try optionalString()
        let requestID = try optionalString()
        let resentCount = try length("resent-at")
        var resentAt: [Timestamp] = []
        resentAt.reserveCapacity(BinaryReader.reservation(for: resentCount))
        for _ in 0..<resentCount { resentAt.append(try timestamp()) }
        var notify = true
        var emailText: String?
        if withNotice {
            notify = try bool()
            let textStart = offset
            emailText = try optionalString()
            if let emailText, emailText.utf8.count > RefundOptions.maxEmailTextBytes {
                throw BinaryDecodingError(
                    message: "email text of \(emailText.utf8.count) bytes exceeds \(RefundOptions.maxEmailTextBytes)",
                    offset: textStart)
            }
        }
        return Refund(
            id: id, orderID: orderID, method: method, amount: amount, feeRetained: feeRetained, tax: tax,
            bookingFee: bookingFee, reason: reason, note: note, createdAt: createdAt, createdBy: createdBy,
            restock: restock, lines: lines, transactions: transactions, jobID: jobID, requestID: requestID,
            resentAt: resentAt, recoveries: recoveries, recoveriesBeforeRetry: recoveriesBeforeRetry, notify: notify,
            emailText: emailText)
    }
}

// MARK: - Options, callers

extension ByteSink {
    mutating func write(_ fee: CancellationFee) {
        switch fee {
        case .perLine(let fees):
            u8(CancellationFeeTag.perLine)
            length(fees.count)
            for (line, amount) in fees.sorted(by: { $0.key < $1.key }) {
                string(line)
                svarint(amount)
            }
        case .each(let amount):
            u8(CancellationFeeTag.each)
            svarint(amount)
        case .order(let amount):
            u8(CancellationFeeTag.order)
            svarint(amount)
        }
    }

    mutating func write(_ options: RefundOptions) {
        optionalStrings(options.lines)
        u8(options.method.wireCode)
        if let fee = options.fee {
            bool(true)
            write(fee)
        } else {
            bool(false)
        }
        bool(options.includeProcessingFees)
        bool(options.includePlatformFees)
        bool(options.includeBookingFee)
        u8(options.policy.wireCode)
        string(options.reason)
        optionalString(options.note)
        bool(options.restock)
        bool(options.notify)
        optionalString(options.emailText)
        optionalString(options.idempotencyKey)
        bool(options.selfService)
    }

    /// A caller: its id, then its permissions as ascending codes.
    mutating func write(_ caller: Caller) {
        string(caller.id)
        var codes: UInt64 = 0
        for permission in caller.permissions { codes |= 1 << UInt64(permission.wireCode) }
        length(codes.nonzeroBitCount)
        var code: UInt8 = 0
        while codes != 0 {
            if codes & 1 != 0 { u8(code) }
            codes >>= 1
            code += 1
        }
    }
}

extension BinaryReader {
    mutating func readCancellationFee() throws(BinaryDecodingError) -> CancellationFee {
        let start = offset
        switch try u8() {
        case CancellationFeeTag.perLine:
            let n = try length("per-line fee")
            var fees: [String: Int64] = [:]
            fees.reserveCapacity(BinaryReader.reservation(for: n))
            var previous: String?
            for _ in 0..<n {
                let keyStart = offset
                let line = try string()
                if let previous, !(previous < line) {
                    throw BinaryDecodingError(
                        message: "per-line fee keys not in strictly ascending order", offset: keyStart)
                }
                fees[line] = try svarint()
                previous = line
            }
            return .perLine(fees)
        case CancellationFeeTag.each:
            return .each(try svarint())
        case CancellationFeeTag.order:
            return .order(try svarint())
        case let other:
            throw BinaryDecodingError(message: "unknown cancellation fee tag \(other)", offset: start)
        }
    }

    mutating func readRefundOptions() throws(BinaryDecodingError) -> RefundOptions {
        let lines = try optionalStrings("option line")
        let method = try code("refund method", RefundMethod.init(wireCode:))
        let fee = try bool() ? try readCancellationFee() : nil
        return RefundOptions(
            lines: lines, method: method, fee: fee, includeProcessingFees: try bool(),
            includePlatformFees: try bool(), includeBookingFee: try bool(),
            policy: try code("refund policy", RefundPolicy.init(wireCode:)), reason: try string(),
            note: try optionalString(), restock: try bool(), notify: try bool(), emailText: try optionalString(),
            idempotencyKey: try optionalString(), selfService: try bool())
    }

    mutating func readCaller() throws(BinaryDecodingError) -> Caller {
        let id = try string()
        let n = try length("permission")
        var permissions = Set<Permission>(minimumCapacity: BinaryReader.reservation(for: n))
        var previous: UInt8?
        for _ in 0..<n {
            let start = offset
            let raw = try u8()
            if let previous, previous >= raw {
                throw BinaryDecodingError(message: "permission codes not in strictly ascending order", offset: start)
            }
            guard let permission = Permission(wireCode: raw) else {
                throw BinaryDecodingError(message: "unknown permission code \(raw)", offset: start)
            }
            permissions.insert(permission)
            previous = raw
        }
        return Caller(id: id, permissions: permissions)
    }
}

// MARK: - Requests, disputes, timeline

extension ByteSink {
    mutating func write(_ request: RefundRequest) {
        string(request.id)
        string(request.orderID)
        optionalStrings(request.lines)
        string(request.reason)
        string(request.requestedBy)
        timestamp(request.createdAt)
        u8(request.status.wireCode)
        optionalString(request.adminNote)
        optionalString(request.decidedBy)
        optionalTimestamp(request.decidedAt)
        optionalString(request.refundID)
    }

    mutating func write(_ dispute: Dispute) {
        optionalString(dispute.reason)
        timestamp(dispute.openedAt)
        string(dispute.openedBy)
        if let outcome = dispute.outcome {
            bool(true)
            u8(outcome.wireCode)
        } else {
            bool(false)
        }
        optionalString(dispute.note)
        optionalTimestamp(dispute.closedAt)
        optionalString(dispute.closedBy)
    }

    mutating func write(_ entry: TimelineEntry) {
        timestamp(entry.at)
        u8(entry.kind.wireCode)
        optionalString(entry.by)
        optionalString(entry.refundID)
        optionalString(entry.detail)
    }
}

extension BinaryReader {
    mutating func readRefundRequest() throws(BinaryDecodingError) -> RefundRequest {
        RefundRequest(
            id: try string(), orderID: try string(), lines: try optionalStrings("request line"),
            reason: try string(), requestedBy: try string(), createdAt: try timestamp(),
            status: try code("request status", RefundRequest.Status.init(wireCode:)),
            adminNote: try optionalString(), decidedBy: try optionalString(), decidedAt: try optionalTimestamp(),
            refundID: try optionalString())
    }

    mutating func readDispute() throws(BinaryDecodingError) -> Dispute {
        Dispute(
            reason: try optionalString(), openedAt: try timestamp(), openedBy: try string(),
            outcome: try bool() ? try code("dispute outcome", DisputeOutcome.init(wireCode:)) : nil,
            note: try optionalString(), closedAt: try optionalTimestamp(), closedBy: try optionalString())
    }

    mutating func readTimelineEntry() throws(BinaryDecodingError) -> TimelineEntry {
        TimelineEntry(
            at: try timestamp(), kind: try code("timeline kind", TimelineEntry.Kind.init(wireCode:)),
            by: try optionalString(), refundID: try optionalString(), detail: try optionalString())
    }
}
