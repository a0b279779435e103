/// The binary encoding of many commits of one partition in one write-ahead-log record: a chunk of a bulk
/// cancellation (its refunds, made in one actor turn) or one batch of gateway answers.
///
/// A bulk chunk's refunds share most of their fields (job, reason, author, buyer notice, method, the instant they
/// were made at) and each has an id derived from its order, so written one record each (``ChangeCodec``) they
/// repeat the same strings thousands of times and LZ4 spends a match token on every repeat. Here the shared fields
/// are written once, in the header, and each refund keeps only what is its own: order, number, lines and
/// transactions. A refund that does not fit that shape, and any other change, is written whole as in
/// ``ChangeCodec``, so nothing a commit can hold is lost.
///
/// Record layout:
///
///     u8       version (``version``)
///     svarint  base time (ms): what entries' times are written against
///     u8       shared refund fields present (0 or 1), then, if 1:
///                string reason, optional string note, string created by, bool restock, u8 method,
///                optional string job id, bool notify, optional string email text,
///                bool run present [uvarint run]   (the engine run in derived refund ids, see ``RefundID``)
///     uvarint  entry count (≥ 1)
///     entry…   u8 entry tag, uvarint outbox range count, (svarint first − end of the previous range in the
///              record (0 before the first), uvarint count) per range, uvarint bytes the order id shares
///              with the previous entry's (≤ 128), length-prefixed rest of its bytes (the whole id must be
///              UTF-8), then by tag:
///                0 whole:   uvarint change count, change… (as in ``ChangeCodec`` version 4; 2 in a version 1
///                           batch, 3 in a version 2 batch)
///                1 refund:  one `refund_created` change, the refund in the compact form below
///                2 answer:  one `attempt_result` change: svarint refund, svarint transaction, attempt result
///                           (as in ``ChangeCodec``), svarint time − base (wrapping, as every time offset)
///
/// A compact refund: svarint number (its id is `RefundID.make(order, number, run)`), svarint created at − base,
/// u8 totals flags (bit 0: amount written, else Σ lines + booking fee; bit 1: fee retained written, else Σ
/// lines; bit 2: tax written, else Σ lines; bit 3: the last transaction's amount written, else the amount less
/// the other transactions'; other bits 0), the written totals in that order, svarint booking fee, uvarint line
/// count, lines (as in ``ChangeCodec``), uvarint transaction count, per transaction: optional string tender,
/// u8 method, svarint amount (not for the last one unless bit 3), u8 shape (0: pending, no attempt yet, first
/// attempt due when the refund was made; 1: settled when the refund was made, in one attempt). Its order id is the entry's,
/// it has no options recorded, no recovery, request, resend or late answer.
///
/// Decoding is strict (unknown version, tag, flag or shape, a count beyond the bytes left, a sum that
/// overflows, trailing bytes: all throw). Unlike ``ChangeCodec`` the encoding is not the only one of its value:
/// an encoder may write any refund whole.
public enum CommitBatchCodec {
    /// 3: whole commits are ``ChangeCodec`` version 4; versions 1 and 2 (whole commits of ``ChangeCodec`` 2 and 3)
    /// are still read.
    public static let version: UInt8 = 3

    /// The ``ChangeCodec`` version of a batch's whole commits, by batch version.
    static func changeVersion(ofBatch version: UInt8) -> UInt8? {
        switch version {
        case 1: 2
        case 2: 3
        case 3: 4
        default: nil
        }
    }

    /// The most bytes an order id may share with the previous one: an order id is a handle (at most
    /// ``Handle/maxLength`` bytes), and the cap bounds what a few bytes of a damaged record can expand to.
    static let maximumSharedPrefix = Handle.maxLength

    /// A cheap over-estimate of the bytes `entry` adds to a batch (written whole), so a writer can cut a
    /// batch well before a record's size limit.
    public static func estimatedSize(_ entry: Entry) -> Int {
        var size = 16 + entry.outbox.count * 12 + entry.orderID.utf8.count
        for change in entry.changes {
            if case .refundCreated(let refund, let options) = change {
                // The estimate of ChangeCodec leaves out a recorded option's texts; count them in.
                size += 2 * (refund.emailText?.utf8.count ?? 0) + (options?.note?.utf8.count ?? 0)
            }
        }
        return size + ChangeCodec.estimatedSize(orderID: entry.orderID, entry.changes)
    }

    /// One commit: the outbox sequence ranges it reserved, its order and its changes.
    public struct Entry: Sendable, Equatable {
        public var outbox: [OutboxRange]
        public var orderID: String
        public var changes: [OrderChange]

        public init(outbox: [OutboxRange], orderID: String, changes: [OrderChange]) {
            self.outbox = outbox
            self.orderID = orderID
            self.changes = changes
        }
    }

    /// A range of outbox sequence numbers a commit reserved.
    public struct OutboxRange: Sendable, Equatable {
        public var first: UInt64
        public var count: Int

        public init(first: UInt64, count: Int) {
            self.first = first
            self.count = count
        }
    }

    enum EntryTag {
        static let whole: UInt8 = 0
        static let refund: UInt8 = 1
        static let answer: UInt8 = 2
    }

    enum TransactionShape {
        static let pending: UInt8 = 0
        static let settledAtCreation: UInt8 = 1
    }

    /// The fields every compact refund of a record shares.
    struct Shared: Equatable {
        var reason: String
        var note: String?
        var createdBy: String
        var restock: Bool
        var method: RefundMethod
        var jobID: String?
        var notify: Bool
        var emailText: String?
        var run: UInt64?
    }

    // MARK: Encoding

    /// Appends one record holding `entries` (at least one) to `writer`.
    public static func encode(_ entries: [Entry], into writer: inout BinaryWriter) {
        precondition(!entries.isEmpty, "a commit batch holds at least one commit")
        var shared: Shared?
        var base: Timestamp?
        for entry in entries {
            guard entry.changes.count == 1 else { continue }
            switch entry.changes[0] {
            case .refundCreated(let refund, nil):
                if shared == nil, let found = sharedFields(of: refund, orderID: entry.orderID) {
                    shared = found
                    base = base ?? refund.createdAt
                }
            case .attemptResult(_, _, _, let at):
                base = base ?? at
            default: break
            }
        }
        let baseTime = base ?? Timestamp(milliseconds: 0)
        writer.u8(version)
        writer.timestamp(baseTime)
        if let shared {
            writer.u8(1)
            writer.string(shared.reason)
            writer.optionalString(shared.note)
            writer.string(shared.createdBy)
            writer.bool(shared.restock)
            writer.u8(shared.method.wireCode)
            writer.optionalString(shared.jobID)
            writer.bool(shared.notify)
            writer.optionalString(shared.emailText)
            writer.bool(shared.run != nil)
            if let run = shared.run { writer.uvarint(run) }
        } else {
            writer.u8(0)
        }
        writer.length(entries.count)
        var context = Context(base: baseTime)
        for entry in entries { write(entry, shared: shared, context: &context, into: &writer) }
    }

    /// What an entry is written against: the record's base time, the end of the previous outbox range and the
    /// previous order id.
    struct Context {
        var base: Timestamp
        var outboxEnd: UInt64 = 0
        var orderID: [UInt8] = []
    }

    private static func write(_ entry: Entry, shared: Shared?, context: inout Context, into writer: inout BinaryWriter) {
        let base = context.base
        let compactRefund: (Refund, number: Int)? = {
            guard entry.changes.count == 1, case .refundCreated(let refund, nil) = entry.changes[0], let shared,
                let number = compactNumber(refund, orderID: entry.orderID, shared: shared)
            else { return nil }
            return (refund, number)
        }()
        let tag: UInt8
        if compactRefund != nil {
            tag = EntryTag.refund
        } else if entry.changes.count == 1, case .attemptResult = entry.changes[0] {
            tag = EntryTag.answer
        } else {
            tag = EntryTag.whole
        }
        writer.u8(tag)
        writer.length(entry.outbox.count)
        for range in entry.outbox {
            writer.svarint(Int64(bitPattern: range.first &- context.outboxEnd))
            writer.length(range.count)
            context.outboxEnd = range.first &+ UInt64(range.count)
        }
        let id = Array(entry.orderID.utf8)
        var common = 0
        while common < min(id.count, context.orderID.count, maximumSharedPrefix), id[common] == context.orderID[common] {
            common += 1
        }
        writer.length(common)
        writer.bytes(id[common...])
        context.orderID = id
        switch tag {
        case EntryTag.refund:
            guard let (refund, number) = compactRefund else { return }
            writeCompact(refund, number: number, base: base, into: &writer)
        case EntryTag.answer:
            guard case .attemptResult(let refund, let transaction, let result, let at) = entry.changes[0] else { return }
            writer.int(refund)
            writer.int(transaction)
            writer.write(result)
            writer.svarint(at.milliseconds &- base.milliseconds)
        default:
            writer.length(entry.changes.count)
            for change in entry.changes { writer.write(change) }
        }
    }

    /// The shared fields of `refund` when it can be written compactly at all.
    static func sharedFields(of refund: Refund, orderID: String) -> Shared? {
        guard let parts = RefundID.components(refund.id), same(parts.order, orderID) else { return nil }
        let shared = Shared(
            reason: refund.reason, note: refund.note, createdBy: refund.createdBy, restock: refund.restock,
            method: refund.method, jobID: refund.jobID, notify: refund.notify, emailText: refund.emailText, run: parts.run)
        return compactNumber(refund, orderID: orderID, shared: shared) != nil ? shared : nil
    }

    /// The refund's number when it can be written compactly under `shared`: every field is either shared, its
    /// own compact field, or at its value for a refund just made.
    /// Strings are compared byte for byte: Swift's `==` takes canonically equivalent spellings ("é" and
    /// "e\u{301}") as equal, and a refund written against the shared fields must come back with its own bytes.
    static func compactNumber(_ refund: Refund, orderID: String, shared: Shared) -> Int? {
        guard same(refund.orderID, orderID), same(refund.reason, shared.reason), same(refund.note, shared.note),
            same(refund.createdBy, shared.createdBy), refund.restock == shared.restock, refund.method == shared.method,
            same(refund.jobID, shared.jobID), refund.notify == shared.notify, same(refund.emailText, shared.emailText),
            refund.recoveries.isEmpty, refund.recoveriesBeforeRetry == 0, refund.requestID == nil,
            refund.resentAt.isEmpty, refund.lateAnswers.isEmpty,
            let parts = RefundID.components(refund.id), same(parts.order, orderID), parts.run == shared.run,
            same(refund.id, RefundID.make(order: orderID, number: parts.number, run: shared.run))
        else { return nil }
        for transaction in refund.transactions where shape(of: transaction, createdAt: refund.createdAt) == nil {
            return nil
        }
        return parts.number
    }

    static func same(_ a: String?, _ b: String?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case (let a?, let b?): sameBytes(a, b)
        default: false
        }
    }

    /// Byte equality, through the contiguous UTF-8 of native strings when there is one (the generic
    /// `elementsEqual` of two UTF-8 views was 1% of a durable bulk cancellation's CPU).
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        let fast = a.utf8.withContiguousStorageIfAvailable { left in
            b.utf8.withContiguousStorageIfAvailable { right in left.elementsEqual(right) }
        }
        if let fast, let equal = fast { return equal }
        return a.utf8.elementsEqual(b.utf8)
    }

    static func shape(of transaction: RefundTransaction, createdAt: Timestamp) -> UInt8? {
        guard transaction.gatewayRef == nil, transaction.failures.isEmpty else { return nil }
        if transaction.status == .pending, transaction.attempts == 0, transaction.nextAttemptAt == createdAt,
            transaction.settledAt == nil
        {
            return TransactionShape.pending
        }
        if transaction.status == .succeeded, transaction.attempts == 1, transaction.nextAttemptAt == nil,
            transaction.settledAt == createdAt
        {
            return TransactionShape.settledAtCreation
        }
        return nil
    }

    private static func writeCompact(_ refund: Refund, number: Int, base: Timestamp, into writer: inout BinaryWriter) {
        writer.int(number)
        writer.svarint(refund.createdAt.milliseconds &- base.milliseconds)
        let sums = lineSums(refund.lines)
        var flags: UInt8 = 0
        if amountTotal(sums, bookingFee: refund.bookingFee) != refund.amount { flags |= 1 }
        if sums?.fee != refund.feeRetained { flags |= 2 }
        if sums?.tax != refund.tax { flags |= 4 }
        if lastTransactionAmount(refund.amount, refund.transactions.dropLast()) != refund.transactions.last?.amount {
            flags |= 8
        }
        writer.u8(flags)
        if flags & 1 != 0 { writer.svarint(refund.amount) }
        if flags & 2 != 0 { writer.svarint(refund.feeRetained) }
        if flags & 4 != 0 { writer.svarint(refund.tax) }
        writer.svarint(refund.bookingFee)
        writer.length(refund.lines.count)
        for line in refund.lines { writer.write(line) }
        writer.length(refund.transactions.count)
        for (index, transaction) in refund.transactions.enumerated() {
            writer.optionalString(transaction.tender)
            writer.u8(transaction.method.wireCode)
            if index < refund.transactions.count - 1 || flags & 8 != 0 { writer.svarint(transaction.amount) }
            writer.u8(shape(of: transaction, createdAt: refund.createdAt) ?? TransactionShape.pending)
        }
    }

    /// Σ amount, fee retained and tax of `lines`; nil when a sum overflows.
    static func lineSums(_ lines: [RefundLine]) -> (amount: Int64, fee: Int64, tax: Int64)? {
        var amount: Int64 = 0
        var fee: Int64 = 0
        var tax: Int64 = 0
        for line in lines {
            let a = amount.addingReportingOverflow(line.amount)
            let f = fee.addingReportingOverflow(line.feeRetained)
            let t = tax.addingReportingOverflow(line.tax)
            guard !a.overflow, !f.overflow, !t.overflow else { return nil }
            (amount, fee, tax) = (a.partialValue, f.partialValue, t.partialValue)
        }
        return (amount, fee, tax)
    }

    /// The refund's amount less the other transactions' amounts; nil when that overflows.
    static func lastTransactionAmount(_ amount: Int64, _ others: ArraySlice<RefundTransaction>) -> Int64? {
        var rest = amount
        for transaction in others {
            let (difference, overflow) = rest.subtractingReportingOverflow(transaction.amount)
            guard !overflow else { return nil }
            rest = difference
        }
        return rest
    }

    /// Σ line amounts + booking fee; nil when it overflows.
    static func amountTotal(_ sums: (amount: Int64, fee: Int64, tax: Int64)?, bookingFee: Int64) -> Int64? {
        guard let sums else { return nil }
        let (total, overflow) = sums.amount.addingReportingOverflow(bookingFee)
        return overflow ? nil : total
    }

    // MARK: Decoding

    /// Decodes one record from the reader's position, leaving the reader after it.
    public static func decode(from reader: inout BinaryReader) throws(BinaryDecodingError) -> [Entry] {
        let start = reader.offset
        let found = try reader.u8()
        guard let changeVersion = changeVersion(ofBatch: found) else {
            throw BinaryDecodingError(message: "unknown commit batch version \(found)", offset: start)
        }
        let base = try reader.timestamp()
        let sharedOffset = reader.offset
        var shared: Shared?
        switch try reader.u8() {
        case 0: break
        case 1:
            let reason = try reader.string()
            let note = try reader.optionalString()
            let createdBy = try reader.string()
            let restock = try reader.bool()
            let method = try reader.code("refund method", RefundMethod.init(wireCode:))
            let jobID = try reader.optionalString()
            let notify = try reader.bool()
            let textStart = reader.offset
            let emailText = try reader.optionalString()
            if let emailText, emailText.utf8.count > RefundOptions.maxEmailTextBytes {
                throw BinaryDecodingError(
                    message: "email text of \(emailText.utf8.count) bytes exceeds \(RefundOptions.maxEmailTextBytes)",
                    offset: textStart)
            }
            let run: UInt64? = try reader.bool() ? try reader.uvarint() : nil
            shared = Shared(
                reason: reason, note: note, createdBy: createdBy, restock: restock, method: method, jobID: jobID,
                notify: notify, emailText: emailText, run: run)
        case let other:
            throw BinaryDecodingError(message: "unknown shared-fields flag \(other)", offset: sharedOffset)
        }
        let countOffset = reader.offset
        let count = try reader.length("commit")
        guard count >= 1 else { throw BinaryDecodingError(message: "a commit batch with no commit", offset: countOffset) }
        var entries: [Entry] = []
        entries.reserveCapacity(BinaryReader.reservation(for: count))
        var context = Context(base: base)
        for _ in 0..<count {
            entries.append(try readEntry(&reader, shared: shared, context: &context, changeVersion: changeVersion))
        }
        return entries
    }

    private static func readEntry(
        _ reader: inout BinaryReader, shared: Shared?, context: inout Context, changeVersion: UInt8
    ) throws(BinaryDecodingError) -> Entry
    {
        let base = context.base
        let tagOffset = reader.offset
        let tag = try reader.u8()
        let ranges = try reader.length("outbox range")
        var outbox: [OutboxRange] = []
        outbox.reserveCapacity(BinaryReader.reservation(for: ranges))
        for _ in 0..<ranges {
            let rangeOffset = reader.offset
            let delta = try reader.svarint()
            let count = try reader.length("outbox sequence")
            let (first, overflow) = context.outboxEnd.addingReportingOverflow(UInt64(bitPattern: delta))
            // A negative delta wraps to a sum below the previous end, and must not pass below zero.
            guard overflow == (delta < 0), UInt64(count) <= UInt64.max - first else {
                throw BinaryDecodingError(message: "outbox range outside the sequence numbers", offset: rangeOffset)
            }
            outbox.append(OutboxRange(first: first, count: count))
            context.outboxEnd = first + UInt64(count)
        }
        let idOffset = reader.offset
        // Not a `length`: the bytes kept come from the previous id, not from what is left of the record.
        let keptRaw = try reader.uvarint()
        guard keptRaw <= UInt64(context.orderID.count), keptRaw <= UInt64(maximumSharedPrefix) else {
            throw BinaryDecodingError(
                message: "order id shares \(keptRaw) bytes with a previous one of \(context.orderID.count)", offset: idOffset)
        }
        let kept = Int(keptRaw)
        let id = Array(context.orderID[..<kept]) + (try reader.bytesSlice())
        guard let orderID = String(validating: id, as: UTF8.self) else {
            throw BinaryDecodingError(message: "invalid UTF-8 in order id", offset: idOffset)
        }
        context.orderID = id
        switch tag {
        case EntryTag.whole:
            let n = try reader.length("change")
            var changes: [OrderChange] = []
            changes.reserveCapacity(BinaryReader.reservation(for: n))
            for _ in 0..<n { changes.append(try reader.readOrderChange(version: changeVersion)) }
            return Entry(outbox: outbox, orderID: orderID, changes: changes)
        case EntryTag.refund:
            guard let shared else {
                throw BinaryDecodingError(message: "a compact refund in a batch without shared refund fields", offset: tagOffset)
            }
            let refund = try readCompact(&reader, orderID: orderID, shared: shared, base: base)
            return Entry(outbox: outbox, orderID: orderID, changes: [.refundCreated(refund, options: nil)])
        case EntryTag.answer:
            let refund = try reader.int("refund number")
            let transaction = try reader.int("transaction index")
            let result = try reader.readAttemptResult()
            let at = try offsetTime(&reader, base: base)
            return Entry(
                outbox: outbox, orderID: orderID,
                changes: [.attemptResult(refund: refund, transaction: transaction, result: result, at: at)])
        default:
            throw BinaryDecodingError(message: "unknown commit batch entry tag \(tag)", offset: tagOffset)
        }
    }

    /// Times are written as wrapping differences from the base (`&-`), so any two times round-trip; reading
    /// adds back the same way.
    private static func offsetTime(_ reader: inout BinaryReader, base: Timestamp) throws(BinaryDecodingError) -> Timestamp {
        Timestamp(milliseconds: base.milliseconds &+ (try reader.svarint()))
    }

    private static func readCompact(_ reader: inout BinaryReader, orderID: String, shared: Shared, base: Timestamp)
        throws(BinaryDecodingError) -> Refund
    {
        let numberOffset = reader.offset
        let number = try reader.int("refund number")
        guard number >= 1 else { throw BinaryDecodingError(message: "refund number \(number)", offset: numberOffset) }
        let createdAt = try offsetTime(&reader, base: base)
        let flagsOffset = reader.offset
        let flags = try reader.u8()
        guard flags & ~15 == 0 else { throw BinaryDecodingError(message: "unknown totals flags \(flags)", offset: flagsOffset) }
        let amount: Int64? = flags & 1 != 0 ? try reader.svarint() : nil
        let fee: Int64? = flags & 2 != 0 ? try reader.svarint() : nil
        let tax: Int64? = flags & 4 != 0 ? try reader.svarint() : nil
        let bookingFee = try reader.svarint()
        let lineCount = try reader.length("refund line")
        var lines: [RefundLine] = []
        lines.reserveCapacity(BinaryReader.reservation(for: lineCount))
        for _ in 0..<lineCount { lines.append(try reader.readRefundLine()) }
        let sumsOffset = reader.offset
        let sums = lineSums(lines)
        func derived(_ value: Int64?) throws(BinaryDecodingError) -> Int64 {
            guard let value else { throw BinaryDecodingError(message: "refund line totals overflow", offset: sumsOffset) }
            return value
        }
        // `??` would take a throwing autoclosure (untyped throws): each written total, else its derivation.
        func total(_ written: Int64?, _ sum: Int64?) throws(BinaryDecodingError) -> Int64 {
            if let written { return written }
            return try derived(sum)
        }
        let amountSum = amountTotal(sums, bookingFee: bookingFee)
        let totalAmount = try total(amount, amountSum)
        let transactionCount = try reader.length("transaction")
        var transactions: [RefundTransaction] = []
        transactions.reserveCapacity(BinaryReader.reservation(for: transactionCount))
        for index in 0..<transactionCount {
            let tender = try reader.optionalString()
            let method = try reader.code("transaction method", TransactionMethod.init(wireCode:))
            let value: Int64
            if index < transactionCount - 1 || flags & 8 != 0 {
                value = try reader.svarint()
            } else {
                guard let rest = lastTransactionAmount(totalAmount, transactions[...]) else {
                    throw BinaryDecodingError(message: "transaction amounts overflow", offset: reader.offset)
                }
                value = rest
            }
            let shapeOffset = reader.offset
            switch try reader.u8() {
            case TransactionShape.pending:
                transactions.append(
                    RefundTransaction(
                        tender: tender, method: method, amount: value, status: .pending, attempts: 0,
                        nextAttemptAt: createdAt, gatewayRef: nil, failures: [], settledAt: nil))
            case TransactionShape.settledAtCreation:
                transactions.append(
                    RefundTransaction(
                        tender: tender, method: method, amount: value, status: .succeeded, attempts: 1,
                        nextAttemptAt: nil, gatewayRef: nil, failures: [], settledAt: createdAt))
            case let other:
                throw BinaryDecodingError(message: "unknown transaction shape \(other)", offset: shapeOffset)
            }
        }
        let totalFee = try total(fee, sums?.fee)
        let totalTax = try total(tax, sums?.tax)
        return Refund(
            id: RefundID.make(order: orderID, number: number, run: shared.run), orderID: orderID, method: shared.method,
            amount: totalAmount, feeRetained: totalFee, tax: totalTax, bookingFee: bookingFee, reason: shared.reason, note: shared.note,
            createdAt: createdAt, createdBy: shared.createdBy, restock: shared.restock, lines: lines,
            transactions: transactions, jobID: shared.jobID, notify: shared.notify, emailText: shared.emailText)
    }
}
