import RefundCore
import RefundStorage

/// A partition's whole state at one log position: what a snapshot holds.
struct PartitionImage: Sendable {
    var sequence: UInt64
    var states: [OrderState]
    var balances: [BalanceKey: Int64]
    var released: [String: Int64]
    var outbox: [OutboxRecord]
    /// The highest outbox number the engine had handed out when the image was taken (version 3). Events leave the
    /// outbox once acknowledged, and the acknowledgement itself lives in the control log, which a repair can give
    /// up: this keeps the numbers they had from being handed out again, so an older snapshot that still holds
    /// them can never bring back a duplicate number.
    var eventsIssued: UInt64 = 0
}

/// Binary layout of a partition snapshot payload (compressed and checksummed by `SnapshotStore`):
///
///     u8       version (4; versions 1 to 3 are read)
///     uvarint  order count, then each order state (``OrderStateCodec``) in slot order (version 4: order states of
///              version 3 or later, whose refunds keep their notify and email text; the layout is otherwise
///              version 3's)
///     uvarint  balance count, then (string customer, string currency, svarint amount) in ascending order
///     uvarint  inventory count, then (string ticket type, svarint units) in ascending order
///     uvarint  outbox count, then (uvarint sequence, svarint at, uvarint slot, uvarint refund, u8 kind, bool notify,
///              svarint detail (version 2; -1 in version 1 images))
///     uvarint  events issued: the engine's highest outbox number when the image was taken (version 3; 0 before)
///
/// An order state older than version 3 kept no notify on its refunds: a refund whose `refund.accepted` (or
/// `order.cancelled`) record is still in the outbox takes the notify that record was written with.
enum PartitionImageCodec {
    static let version: UInt8 = 4

    static func encode(_ image: PartitionImage) -> [UInt8] {
        var writer = BinaryWriter(capacity: 64 + image.states.count * 512)
        writer.u8(version)
        writer.uvarint(UInt64(image.states.count))
        for state in image.states { OrderStateCodec.encode(state, into: &writer) }
        writer.uvarint(UInt64(image.balances.count))
        let balances = image.balances.sorted {
            ($0.key.customer, $0.key.currency) < ($1.key.customer, $1.key.currency)
        }
        for (key, amount) in balances {
            writer.string(key.customer)
            writer.string(key.currency)
            writer.svarint(amount)
        }
        writer.uvarint(UInt64(image.released.count))
        for (ticketType, units) in image.released.sorted(by: { $0.key < $1.key }) {
            writer.string(ticketType)
            writer.svarint(units)
        }
        writer.uvarint(UInt64(image.outbox.count))
        for record in image.outbox {
            writer.uvarint(record.sequence)
            writer.svarint(record.at.milliseconds)
            writer.uvarint(UInt64(record.slot))
            writer.uvarint(UInt64(record.refund))
            writer.u8(record.kind.wireCode)
            writer.bool(record.notify)
            writer.svarint(Int64(record.detail))
        }
        writer.uvarint(image.eventsIssued)
        return writer.take()
    }

    static func decode(_ bytes: [UInt8], sequence: UInt64) throws(BinaryDecodingError) -> PartitionImage {
        var reader = BinaryReader(bytes)
        let found = try reader.u8()
        guard (1...version).contains(found) else {
            throw BinaryDecodingError(message: "unknown snapshot version \(found)", offset: 0)
        }
        let count = try bounded(&reader, "order")
        var states: [OrderState] = []
        states.reserveCapacity(BinaryReader.reservation(for: count))
        // Slots whose state predates refunds keeping their notify.
        var withoutNotice: Set<Int> = []
        for slot in 0..<count {
            let (state, stateVersion) = try OrderStateCodec.decodeWithVersion(from: &reader)
            if stateVersion < 3 { withoutNotice.insert(slot) }
            states.append(state)
        }
        var balances: [BalanceKey: Int64] = [:]
        for _ in 0..<(try bounded(&reader, "balance")) {
            let customer = try reader.string()
            let currency = try reader.string()
            balances[BalanceKey(customer: customer, currency: currency)] = try reader.svarint()
        }
        var released: [String: Int64] = [:]
        for _ in 0..<(try bounded(&reader, "inventory")) {
            let ticketType = try reader.string()
            released[ticketType] = try reader.svarint()
        }
        let outboxCount = try bounded(&reader, "outbox")
        var outbox: [OutboxRecord] = []
        outbox.reserveCapacity(BinaryReader.reservation(for: outboxCount))
        for _ in 0..<outboxCount {
            let sequenceOffset = reader.offset
            let sequence = try reader.uvarint()
            // Outbox numbers start at 1, and the engine counts on from the last one: keep it clear of overflow.
            guard sequence >= 1, sequence <= SegmentFormat.maxSequence else {
                throw BinaryDecodingError(
                    message: "outbox sequence \(sequence) is outside 1...\(SegmentFormat.maxSequence)",
                    offset: sequenceOffset)
            }
            let at = Timestamp(milliseconds: try reader.svarint())
            let slot = try reader.uvarint()
            let refund = try reader.uvarint()
            let offset = reader.offset
            guard let kind = OutboxEvent.Kind(wireCode: try reader.u8()) else {
                throw BinaryDecodingError(message: "unknown outbox kind", offset: offset)
            }
            let notify = try reader.bool()
            let detailOffset = reader.offset
            let detail = found >= 2 ? try reader.svarint() : -1
            guard let detail32 = Int32(exactly: detail), detail32 >= -1 else {
                throw BinaryDecodingError(message: "outbox detail \(detail) out of range", offset: detailOffset)
            }
            guard slot < UInt64(states.count), refund >= 1, refund <= UInt64(states[Int(slot)].refunds.count),
                let slot32 = Int32(exactly: slot), let refund32 = Int32(exactly: refund)
            else {
                throw BinaryDecodingError(message: "outbox record points at no refund", offset: offset)
            }
            outbox.append(
                OutboxRecord(
                    sequence: sequence, at: at, slot: slot32, refund: refund32, kind: kind, notify: notify, detail: detail32))
        }
        var eventsIssued: UInt64 = 0
        if found >= 3 {
            let issuedOffset = reader.offset
            eventsIssued = try reader.uvarint()
            guard eventsIssued <= SegmentFormat.maxSequence, eventsIssued >= (outbox.last?.sequence ?? 0) else {
                throw BinaryDecodingError(
                    message: "events issued \(eventsIssued) is below the outbox it holds or above \(SegmentFormat.maxSequence)",
                    offset: issuedOffset)
            }
        }
        try reader.expectEnd()
        if !withoutNotice.isEmpty { restoreNotify(&states, slots: withoutNotice, from: outbox) }
        return PartitionImage(
            sequence: sequence, states: states, balances: balances, released: released, outbox: outbox,
            eventsIssued: eventsIssued)
    }

    /// Older order states: the notify each refund was created with, where the record of its creation still says.
    private static func restoreNotify(_ states: inout [OrderState], slots: Set<Int>, from outbox: [OutboxRecord]) {
        var notices: [Int: [(refund: Int, notify: Bool)]] = [:]
        for record in outbox where record.kind == .refundAccepted || record.kind == .orderCancelled {
            let slot = Int(record.slot)
            if slots.contains(slot) { notices[slot, default: []].append((Int(record.refund), record.notify)) }
        }
        for (slot, found) in notices {
            let s = states[slot]
            var refunds = s.refunds
            for (number, notify) in found { refunds[number - 1].notify = notify }  // checked when the record was read
            states[slot] = OrderState(
                restoring: s.order, lineStatus: s.lineStatus, tenderRefunded: s.tenderRefunded, refunds: refunds,
                bookingFeeRefunded: s.bookingFeeRefunded, disputes: s.disputes, requests: s.requests,
                timeline: s.timeline, idempotency: s.idempotency, placedAt: s.placedAt)
        }
    }

    private static func bounded(_ reader: inout BinaryReader, _ what: String) throws(BinaryDecodingError) -> Int {
        let offset = reader.offset
        let count = try reader.uvarint()
        guard count <= UInt64(reader.remaining) else {
            throw BinaryDecodingError(message: "\(what) count \(count) exceeds the bytes left", offset: offset)
        }
        return Int(count)
    }
}

extension OutboxEvent.Kind {
    var wireCode: UInt8 {
        switch self {
        case .refundAccepted: 1
        case .refundCompleted: 2
        case .refundFailed: 3
        case .orderCancelled: 4
        case .confirmationResent: 5
        case .bulkSummary: 6
        case .bulkUpdate: 7
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 1: self = .refundAccepted
        case 2: self = .refundCompleted
        case 3: self = .refundFailed
        case 4: self = .orderCancelled
        case 5: self = .confirmationResent
        case 6: self = .bulkSummary
        case 7: self = .bulkUpdate
        default: return nil
        }
    }
}
