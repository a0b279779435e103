/// The versioned binary encoding of a whole ``OrderState``, for snapshots.
///
/// Layout:
///
///     u8       version (``version``)
///     Order
///     uvarint  line count, then one LineStatus code byte per order line (must equal the order's line count)
///     uvarint  tender count, then one svarint per tender (must equal the order's tender count)
///     uvarint  refund count, Refund… (from version 3 each ends with its notify and email text)
///     bool     booking fee refunded
///     uvarint  dispute count, Dispute…
///     uvarint  request count, RefundRequest…
///     uvarint  timeline count, TimelineEntry…
///     uvarint  idempotency count, then (key string, RefundOptions, svarint refund number)… in ascending key order
///     svarint  placed-at milliseconds
///     (version 2) uvarint count of refunds with late answers, then (uvarint refund number, uvarint answer
///     count, LateAnswer…)… — answers for superseded gateway attempts (version 1 states have none)
///     (version 4) uvarint count of ticket transfers, then (string line, optional string from, optional string
///     to, svarint at, string by, and from version 5: u8 status, optional svarint decided at, optional string
///     decided by)…; and every order line ends with its optional holder
///
/// Versions 1 to 4 are still read (1–3 without holders or transfers, 4 with every transfer completed). They did not keep a refund's notify or email text: a refund made with an
/// idempotency key takes notify from the options kept for the key, every other one is read with notify true and
/// no text (``decodeWithVersion(from:)`` tells a reader that can recover notify elsewhere which data is old).
///
/// Decoding rebuilds the state with ``OrderState/init(restoring:lineStatus:tenderRefunded:refunds:bookingFeeRefunded:disputes:requests:timeline:idempotency:placedAt:transfers:)``
/// so `decode(encode(s)) == s`. Encoding is deterministic; decoding is strict (see ``ChangeCodec``).
public enum OrderStateCodec {
    public static let version: UInt8 = 5

    /// Appends one encoded state to `writer`.
    public static func encode(_ state: OrderState, into writer: inout BinaryWriter) {
        Snapshot(state: state).append(to: &writer, estimate: estimatedSize(state))
    }

    /// One state as bytes.
    public static func encode(_ state: OrderState) -> [UInt8] {
        Snapshot(state: state).encodedBytes(estimate: estimatedSize(state))
    }

    /// One state as version 3 wrote it (no holders, no transfers): for tests that must produce older data. A
    /// state with holders or transfers has no version 3 form.
    static func encodeVersion3(_ state: OrderState) -> [UInt8] {
        precondition(state.transfers.isEmpty && state.order.lines.allSatisfy { $0.holder == nil })
        return Snapshot(state: state, version: 3).encodedBytes(estimate: estimatedSize(state))
    }

    /// One state as version 4 wrote it (transfers without status): for compatibility tests. Only a state whose
    /// transfers are all completed and undecided has a version 4 form.
    static func encodeVersion4(_ state: OrderState) -> [UInt8] {
        precondition(state.transfers.allSatisfy { $0.status == .completed && $0.decidedAt == nil && $0.decidedBy == nil })
        return Snapshot(state: state, version: 4).encodedBytes(estimate: estimatedSize(state))
    }

    private struct Snapshot: SinkEncodable {
        let state: OrderState
        var version = OrderStateCodec.version

        func encode<S: ByteSink>(to writer: inout S) {
            writer.u8(version)
            writer.write(state.order, holders: version >= 4)
            writer.length(state.lineStatus.count)
            for status in state.lineStatus { writer.u8(status.wireCode) }
            writer.length(state.tenderRefunded.count)
            for amount in state.tenderRefunded { writer.svarint(amount) }
            writer.length(state.refunds.count)
            for refund in state.refunds { writer.write(refund) }
            writer.bool(state.bookingFeeRefunded)
            writer.length(state.disputes.count)
            for dispute in state.disputes { writer.write(dispute) }
            writer.length(state.requests.count)
            for request in state.requests { writer.write(request) }
            writer.length(state.timeline.count)
            for entry in state.timeline { writer.write(entry) }
            writer.length(state.idempotency.count)
            if !state.idempotency.isEmpty {
                for (key, entry) in state.idempotency.sorted(by: { $0.key < $1.key }) {
                    writer.string(key)
                    writer.write(entry.options)
                    writer.int(entry.refund)
                }
            }
            writer.timestamp(state.placedAt)
            let withLate = state.refunds.indices.filter { !state.refunds[$0].lateAnswers.isEmpty }
            writer.length(withLate.count)
            for index in withLate {
                writer.int(index + 1)
                writer.length(state.refunds[index].lateAnswers.count)
                for answer in state.refunds[index].lateAnswers { writer.write(answer) }
            }
            guard version >= 4 else { return }
            writer.length(state.transfers.count)
            for transfer in state.transfers { writer.write(transfer, withStatus: version >= 5) }
        }
    }

    /// Decodes one whole encoded state; trailing bytes are an error.
    public static func decode(_ bytes: [UInt8]) throws(BinaryDecodingError) -> OrderState {
        var reader = BinaryReader(bytes)
        let state = try decode(from: &reader)
        try reader.expectEnd()
        return state
    }

    /// Decodes one whole encoded state from a slice (no copy); trailing bytes are an error.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(BinaryDecodingError) -> OrderState {
        var reader = BinaryReader(bytes)
        let state = try decode(from: &reader)
        try reader.expectEnd()
        return state
    }

    /// Decodes one state from the reader's position, leaving the reader after it (for several states in a row).
    public static func decode(from reader: inout BinaryReader) throws(BinaryDecodingError) -> OrderState {
        try decodeWithVersion(from: &reader).state
    }

    /// Decodes one state from the reader's position, and the version it was written in.
    public static func decodeWithVersion(from reader: inout BinaryReader) throws(BinaryDecodingError)
        -> (state: OrderState, version: UInt8)
    {
        let start = reader.offset
        let found = try reader.u8()
        guard (1...version).contains(found) else {
            throw BinaryDecodingError(message: "unknown order state version \(found)", offset: start)
        }
        let order = try reader.readOrder(withHolders: found >= 4)

        let lineStart = reader.offset
        let lineCount = try reader.length("line status")
        guard lineCount == order.lines.count else {
            throw BinaryDecodingError(
                message: "\(lineCount) line statuses for an order of \(order.lines.count) lines", offset: lineStart)
        }
        var lineStatus: [LineStatus] = []
        lineStatus.reserveCapacity(BinaryReader.reservation(for: lineCount))
        for _ in 0..<lineCount { lineStatus.append(try reader.code("line status", LineStatus.init(wireCode:))) }

        let tenderStart = reader.offset
        let tenderCount = try reader.length("tender refunded")
        guard tenderCount == order.tenders.count else {
            throw BinaryDecodingError(
                message: "\(tenderCount) tender amounts for an order of \(order.tenders.count) tenders",
                offset: tenderStart)
        }
        var tenderRefunded: [Int64] = []
        tenderRefunded.reserveCapacity(BinaryReader.reservation(for: tenderCount))
        for _ in 0..<tenderCount { tenderRefunded.append(try reader.svarint()) }

        let refundCount = try reader.length("refund")
        var refunds: [Refund] = []
        refunds.reserveCapacity(BinaryReader.reservation(for: refundCount))
        for _ in 0..<refundCount { refunds.append(try reader.readRefund(withNotice: found >= 3)) }

        let bookingFeeRefunded = try reader.bool()

        let disputeCount = try reader.length("dispute")
        var disputes: [Dispute] = []
        disputes.reserveCapacity(BinaryReader.reservation(for: disputeCount))
        for _ in 0..<disputeCount { disputes.append(try reader.readDispute()) }

        let requestCount = try reader.length("request")
        var requests: [RefundRequest] = []
        requests.reserveCapacity(BinaryReader.reservation(for: requestCount))
        for _ in 0..<requestCount { requests.append(try reader.readRefundRequest()) }

        let timelineCount = try reader.length("timeline entry")
        var timeline: [TimelineEntry] = []
        timeline.reserveCapacity(BinaryReader.reservation(for: timelineCount))
        for _ in 0..<timelineCount { timeline.append(try reader.readTimelineEntry()) }

        let keyCount = try reader.length("idempotency key")
        var idempotency: [String: OrderState.IdempotentRefund] = [:]
        idempotency.reserveCapacity(BinaryReader.reservation(for: keyCount))
        var previous: String?
        for _ in 0..<keyCount {
            let keyStart = reader.offset
            let key = try reader.string()
            if let previous, !(previous < key) {
                throw BinaryDecodingError(message: "idempotency keys not in strictly ascending order", offset: keyStart)
            }
            let options = try reader.readRefundOptions()
            let refund = try reader.int("refund number")
            idempotency[key] = OrderState.IdempotentRefund(options: options, refund: refund)
            // Older states kept no notify on the refund: the options of its key say what it was.
            if found < 3, refund >= 1, refund <= refunds.count { refunds[refund - 1].notify = options.notify }
            previous = key
        }

        let placedAt = try reader.timestamp()
        if found >= 2 {
            let withLate = try reader.length("refund with late answers")
            var previousNumber = 0
            for _ in 0..<withLate {
                let numberStart = reader.offset
                let number = try reader.int("refund number")
                guard number > previousNumber, number <= refunds.count else {
                    throw BinaryDecodingError(message: "late answers for refund \(number) out of order or range", offset: numberStart)
                }
                previousNumber = number
                let count = try reader.length("late answer")
                var answers: [LateAnswer] = []
                answers.reserveCapacity(BinaryReader.reservation(for: count))
                for _ in 0..<count {
                    let answerStart = reader.offset
                    let answer = try reader.readLateAnswer()
                    guard answer.transaction >= 0, answer.transaction < refunds[number - 1].transactions.count else {
                        throw BinaryDecodingError(message: "late answer names no transaction", offset: answerStart)
                    }
                    answers.append(answer)
                }
                refunds[number - 1].lateAnswers = answers
            }
        }
        var transfers: [TicketTransfer] = []
        if found >= 4 {
            let count = try reader.length("ticket transfer")
            transfers.reserveCapacity(BinaryReader.reservation(for: count))
            // A transfer may name a line the order no longer has: `order.put` may replace an order (before any
            // refund) with other lines, and the history of the one replaced is kept.
            for _ in 0..<count { transfers.append(try reader.readTicketTransfer(withStatus: found >= 5)) }
        }
        let state = OrderState(
            restoring: order, lineStatus: lineStatus, tenderRefunded: tenderRefunded, refunds: refunds,
            bookingFeeRefunded: bookingFeeRefunded, disputes: disputes, requests: requests, timeline: timeline,
            idempotency: idempotency, placedAt: placedAt, transfers: transfers)
        return (state, found)
    }

    /// A cheap guess of the encoded size, so the writer allocates once in the common case.
    static func estimatedSize(_ state: OrderState) -> Int {
        var size = 160 + state.order.lines.count * 56 + state.order.tenders.count * 40
        for refund in state.refunds {
            size += 112 + refund.lines.count * 24 + refund.transactions.count * 40 + (refund.emailText?.utf8.count ?? 0)
        }
        size += state.disputes.count * 48 + state.requests.count * 96 + state.timeline.count * 40
        size += state.idempotency.count * 96
        return size
    }
}
