/// The versioned binary encoding of one write-ahead-log record: the changes decided for one order.
///
/// Record layout:
///
///     u8       version (``version``)
///     string   order id
///     uvarint  change count
///     change…  each a tag byte (`OrderChangeTag`) followed by its fields
///
/// Field encodings are described in `ChangeCodec+Model.swift`, enum codes in `ChangeCodec+Codes.swift`.
/// Version 2 added the buyer notice to every refund (notify and email text, see `write(_ refund:)`); version 1
/// records are still read: a `refund_created` refund then takes notify from the options recorded with it (version 1
/// recorded them whenever notify was off) and has no email text. Version 3 added each order line's holder
/// (`optional string` after `claimed`) and ticket transfers (tag 15); version 2 lines are read with no holder.
/// Version 4 added a transfer's status and decision (pending transfers) and their decisions (tag 16); a
/// version 3 transfer was always completed.
///
/// Encoding is deterministic (the same value always gives the same bytes) and decoding is strict: an unknown
/// version, tag or enum code, a truncated record, non-canonical data or trailing bytes all throw.
public enum ChangeCodec {
    public static let version: UInt8 = 4

    /// Appends one record to `writer`.
    public static func encode(orderID: String, _ changes: [OrderChange], into writer: inout BinaryWriter) {
        Record(orderID: orderID, changes: changes).append(
            to: &writer, estimate: estimatedSize(orderID: orderID, changes))
    }

    /// One record as bytes.
    public static func encode(orderID: String, _ changes: [OrderChange]) -> [UInt8] {
        Record(orderID: orderID, changes: changes).encodedBytes(estimate: estimatedSize(orderID: orderID, changes))
    }

    private struct Record: SinkEncodable {
        let orderID: String
        let changes: [OrderChange]

        func encode<S: ByteSink>(to sink: inout S) {
            sink.u8(ChangeCodec.version)
            sink.string(orderID)
            sink.length(changes.count)
            for change in changes { sink.write(change) }
        }
    }

    /// Decodes one whole record; trailing bytes are an error.
    public static func decode(_ bytes: [UInt8]) throws(BinaryDecodingError) -> (orderID: String, changes: [OrderChange]) {
        var reader = BinaryReader(bytes)
        let record = try decode(from: &reader)
        try reader.expectEnd()
        return record
    }

    /// Decodes one whole record from a slice (no copy); trailing bytes are an error.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(BinaryDecodingError)
        -> (orderID: String, changes: [OrderChange])
    {
        var reader = BinaryReader(bytes)
        let record = try decode(from: &reader)
        try reader.expectEnd()
        return record
    }

    /// Decodes one record from the reader's position, leaving the reader after it.
    public static func decode(from reader: inout BinaryReader) throws(BinaryDecodingError)
        -> (orderID: String, changes: [OrderChange])
    {
        let start = reader.offset
        let found = try reader.u8()
        guard (1...version).contains(found) else {
            throw BinaryDecodingError(message: "unknown change record version \(found)", offset: start)
        }
        let orderID = try reader.string()
        let n = try reader.length("change")
        var changes: [OrderChange] = []
        changes.reserveCapacity(BinaryReader.reservation(for: n))
        for _ in 0..<n { changes.append(try reader.readOrderChange(version: found)) }
        return (orderID, changes)
    }

    /// A cheap upper-ish guess of a record's size, so the writer allocates once in the common case.
    static func estimatedSize(orderID: String, _ changes: [OrderChange]) -> Int {
        var size = 8 + orderID.utf8.count
        for change in changes {
            switch change {
            case .placed(let order, _, _), .replaced(let order, _, _):
                size += 96 + order.lines.count * 48 + order.tenders.count * 32
            case .refundCreated(let refund, let options):
                size += 112 + refund.lines.count * 24 + refund.transactions.count * 32 + (refund.emailText?.utf8.count ?? 0)
                if options != nil { size += 64 }
            case .requestCreated(let request):
                size += 96 + (request.lines?.count ?? 0) * 16
            default:
                size += 48
            }
        }
        return size
    }
}

// MARK: - Changes

extension ByteSink {
    mutating func write(_ result: AttemptResult) {
        switch result {
        case .succeeded(let reference):
            u8(AttemptResultTag.succeeded)
            optionalString(reference)
        case .accepted(let reference):
            u8(AttemptResultTag.accepted)
            optionalString(reference)
        case .failed(let code, let retryable, let retryAt):
            u8(AttemptResultTag.failed)
            string(code)
            bool(retryable)
            optionalTimestamp(retryAt)
        case .unknown(let reason, let retryAt):
            u8(AttemptResultTag.unknown)
            string(reason)
            timestamp(retryAt)
        }
    }

    mutating func write(_ answer: LateAnswer) {
        int(answer.transaction)
        int(answer.attempt)
        bool(answer.succeeded)
        optionalString(answer.reference)
        optionalString(answer.failureCode)
        timestamp(answer.at)
    }

    mutating func write(_ change: OrderChange) {
        switch change {
        case .placed(let order, let at, let by):
            u8(OrderChangeTag.placed)
            write(order)
            timestamp(at)
            string(by)
        case .replaced(let order, let at, let by):
            u8(OrderChangeTag.replaced)
            write(order)
            timestamp(at)
            string(by)
        case .refundCreated(let refund, let options):
            u8(OrderChangeTag.refundCreated)
            write(refund)
            if let options {
                bool(true)
                write(options)
            } else {
                bool(false)
            }
        case .attemptResult(let refund, let transaction, let result, let at):
            u8(OrderChangeTag.attemptResult)
            int(refund)
            int(transaction)
            write(result)
            timestamp(at)
        case .settled(let refund, let transaction, let result, let at):
            u8(OrderChangeTag.settled)
            int(refund)
            int(transaction)
            write(result)
            timestamp(at)
        case .retried(let refund, let at, let by):
            u8(OrderChangeTag.retried)
            int(refund)
            timestamp(at)
            string(by)
        case .recovered(let refund, let recovery):
            u8(OrderChangeTag.recovered)
            int(refund)
            write(recovery)
        case .disputeOpened(let reason, let at, let by):
            u8(OrderChangeTag.disputeOpened)
            optionalString(reason)
            timestamp(at)
            string(by)
        case .disputeClosed(let outcome, let note, let at, let by):
            u8(OrderChangeTag.disputeClosed)
            u8(outcome.wireCode)
            optionalString(note)
            timestamp(at)
            string(by)
        case .requestCreated(let request):
            u8(OrderChangeTag.requestCreated)
            write(request)
        case .requestDecided(let request, let approved, let note, let refundID, let at, let by):
            u8(OrderChangeTag.requestDecided)
            int(request)
            bool(approved)
            optionalString(note)
            optionalString(refundID)
            timestamp(at)
            string(by)
        case .confirmationResent(let refund, let at, let by):
            u8(OrderChangeTag.confirmationResent)
            int(refund)
            timestamp(at)
            string(by)
        case .lateAnswer(let refund, let answer):
            u8(OrderChangeTag.lateAnswer)
            int(refund)
            write(answer)
        case .factsUpdated(let update, let at, let by):
            // Each fact: u8 0 (unchanged), 1 (false) or 2 (true).
            u8(OrderChangeTag.factsUpdated)
            u8(OrderFactsUpdate.code(update.frozen))
            u8(OrderFactsUpdate.code(update.syncPending))
            length(update.lines.count)
            for line in update.lines {
                string(line.id)
                u8(OrderFactsUpdate.code(line.transferred))
                u8(OrderFactsUpdate.code(line.claimed))
            }
            timestamp(at)
            string(by)
        case .ticketTransferred(let transfer):
            u8(OrderChangeTag.ticketTransferred)
            write(transfer)
        case .transferDecided(let line, let accepted, let at, let by):
            u8(OrderChangeTag.transferDecided)
            string(line)
            bool(accepted)
            timestamp(at)
            string(by)
        }
    }
}

extension BinaryReader {
    mutating func readLateAnswer() throws(BinaryDecodingError) -> LateAnswer {
        LateAnswer(
            transaction: try int("transaction index"), attempt: try int("attempt"), succeeded: try bool(),
            reference: try optionalString(), failureCode: try optionalString(), at: try timestamp())
    }

    mutating func readAttemptResult() throws(BinaryDecodingError) -> AttemptResult {
        let start = offset
        switch try u8() {
        case AttemptResultTag.succeeded:
            return .succeeded(reference: try optionalString())
        case AttemptResultTag.accepted:
            return .accepted(reference: try optionalString())
        case AttemptResultTag.failed:
            return .failed(code: try string(), retryable: try bool(), retryAt: try optionalTimestamp())
        case AttemptResultTag.unknown:
            return .unknown(reason: try string(), retryAt: try timestamp())
        case let other:
            throw BinaryDecodingError(message: "unknown attempt result tag \(other)", offset: start)
        }
    }

    mutating func readOrderChange(version: UInt8) throws(BinaryDecodingError) -> OrderChange {
        let start = offset
        switch try u8() {
        case OrderChangeTag.placed:
            return .placed(try readOrder(withHolders: version >= 3), at: try timestamp(), by: try string())
        case OrderChangeTag.replaced:
            return .replaced(try readOrder(withHolders: version >= 3), at: try timestamp(), by: try string())
        case OrderChangeTag.refundCreated:
            var refund = try readRefund(withNotice: version >= 2)
            let options = try bool() ? try readRefundOptions() : nil
            if version < 2 { refund.notify = options?.notify ?? true }
            return .refundCreated(refund, options: options)
        case OrderChangeTag.attemptResult:
            return .attemptResult(
                refund: try int("refund number"), transaction: try int("transaction index"),
                result: try readAttemptResult(), at: try timestamp())
        case OrderChangeTag.settled:
            return .settled(
                refund: try int("refund number"), transaction: try int("transaction index"),
                result: try readAttemptResult(), at: try timestamp())
        case OrderChangeTag.retried:
            return .retried(refund: try int("refund number"), at: try timestamp(), by: try string())
        case OrderChangeTag.recovered:
            return .recovered(refund: try int("refund number"), try readRecovery())
        case OrderChangeTag.disputeOpened:
            return .disputeOpened(reason: try optionalString(), at: try timestamp(), by: try string())
        case OrderChangeTag.disputeClosed:
            return .disputeClosed(
                outcome: try code("dispute outcome", DisputeOutcome.init(wireCode:)), note: try optionalString(),
                at: try timestamp(), by: try string())
        case OrderChangeTag.requestCreated:
            return .requestCreated(try readRefundRequest())
        case OrderChangeTag.requestDecided:
            return .requestDecided(
                request: try int("request number"), approved: try bool(), note: try optionalString(),
                refundID: try optionalString(), at: try timestamp(), by: try string())
        case OrderChangeTag.confirmationResent:
            return .confirmationResent(refund: try int("refund number"), at: try timestamp(), by: try string())
        case OrderChangeTag.lateAnswer:
            return .lateAnswer(refund: try int("refund number"), try readLateAnswer())
        case OrderChangeTag.factsUpdated:
            func fact() throws(BinaryDecodingError) -> Bool? {
                let offset = self.offset
                guard let value = OrderFactsUpdate.fact(code: try u8()) else {
                    throw BinaryDecodingError(message: "a fact is coded 0, 1 or 2", offset: offset)
                }
                return value
            }
            let frozen = try fact()
            let syncPending = try fact()
            var lines: [OrderFactsUpdate.Line] = []
            for _ in 0..<(try length("line count")) {
                lines.append(OrderFactsUpdate.Line(id: try string(), transferred: try fact(), claimed: try fact()))
            }
            return .factsUpdated(
                OrderFactsUpdate(frozen: frozen, syncPending: syncPending, lines: lines), at: try timestamp(),
                by: try string())
        case OrderChangeTag.ticketTransferred where version >= 3:
            return .ticketTransferred(try readTicketTransfer(withStatus: version >= 4))
        case OrderChangeTag.transferDecided where version >= 4:
            return .transferDecided(line: try string(), accepted: try bool(), at: try timestamp(), by: try string())
        case let other:
            throw BinaryDecodingError(message: "unknown change tag \(other)", offset: start)
        }
    }
}
