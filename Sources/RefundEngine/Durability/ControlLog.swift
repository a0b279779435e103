import RefundCore
import RefundStorage

/// The engine's control log (`<data>/control/`): bulk jobs started and queued, so a crash mid-job resumes it
/// and `bulk.status` survives a restart. Low volume; one record per job event.
///
///     u8 kind 2 (job started): string job id, uvarint event count, strings, u8 payment method (0: any),
///        u8 channel (0: any), RefundOptions (RefundOptionsCodec), bool dry run, string caller id,
///        uvarint permission count, strings
///     u8 kind 3 (job queued): string job id, uvarint total, uvarint skipped count, (string order, string reason)…
///     u8 kind 4 (events acknowledged): uvarint up-to sequence
///     u8 kind 5 (engine event): uvarint sequence, string kind, svarint at (ms), string job id, svarint amount,
///        optional string text
///     u8 kind 6 (job paused): string job id
///     u8 kind 7 (job resumed): string job id
///     u8 kind 8 (job aborted): string job id, uvarint total, uvarint processed, uvarint skipped count,
///        (string order, string reason)…
///     u8 kind 9 (event settings): string event id, optional svarint self-service cutoff hours
///     u8 kind 10 (event settings): kind 9's fields, then bool members-only (written from layout 5 on)
///
/// A job's last record says how it stands: queued (3) or aborted (8) end it; otherwise the last of 6 and 7 says
/// whether it resumes paused. An event's last kind 9 or 10 is its settings. Kinds 6 to 9 came with data directory
/// layout 4.
///
/// Kinds 4 and 5 make the outbox's sequence numbers durable: an acknowledgement survives a restart (the events
/// it covers are not delivered again, and numbers are never handed out twice even once the snapshot holds none
/// of them), and a bulk summary or update is kept under the number it was announced with.
final class ControlLog: Sendable {
    static let jobStarted: UInt8 = 2
    static let jobQueued: UInt8 = 3
    static let eventsAcknowledged: UInt8 = 4
    static let engineEvent: UInt8 = 5
    static let jobPaused: UInt8 = 6
    static let jobResumed: UInt8 = 7
    static let jobAborted: UInt8 = 8
    static let eventSettings: UInt8 = 9
    static let eventSettingsMembers: UInt8 = 10

    let log: WriteAheadLog

    init(log: WriteAheadLog) { self.log = log }

    struct StartedJob {
        var id: String
        var request: BulkCancelRequest
        var caller: Caller
    }

    struct QueuedJob {
        var id: String
        var total: Int
        var skipped: [BulkOrderIssue]
        /// Set for an aborted job (kind 8): the orders it processed before it stopped (less than `total`).
        var abortedAfter: Int?
    }

    func started(_ job: BulkJob, caller: Caller) async throws(StorageError) {
        var w = BinaryWriter(capacity: 256)
        w.u8(Self.jobStarted)
        w.string(job.id)
        w.uvarint(UInt64(job.request.events.count))
        for event in job.request.events { w.string(event) }
        w.u8(job.request.paymentMethod.map { UInt8(TenderMethod.allCases.firstIndex(of: $0) ?? 0) + 1 } ?? 0)
        w.u8(job.request.channel.map { UInt8(Channel.allCases.firstIndex(of: $0) ?? 0) + 1 } ?? 0)
        RefundOptionsCodec.encode(job.request.options, into: &w)
        w.bool(job.request.dryRun)
        w.string(caller.id)
        let permissions = caller.permissions.map(\.rawValue).sorted()
        w.uvarint(UInt64(permissions.count))
        for permission in permissions { w.string(permission) }
        try await log.waitDurable(try log.append(w.take()))
    }

    func queued(_ status: BulkJobStatus) async throws(StorageError) {
        try await end(status, kind: Self.jobQueued)
    }

    /// An aborted job's final record: it selects no more orders after a restart.
    func aborted(_ status: BulkJobStatus) async throws(StorageError) {
        try await end(status, kind: Self.jobAborted)
    }

    /// A job paused or resumed, durable before it takes effect.
    func modeChanged(_ jobID: String, paused: Bool) async throws(StorageError) {
        var w = BinaryWriter(capacity: 8 + jobID.utf8.count)
        w.u8(paused ? Self.jobPaused : Self.jobResumed)
        w.string(jobID)
        try await log.waitDurable(try log.append(w.take()))
    }

    /// An event's settings, durable before they take effect.
    func eventSettings(_ settings: EventSettings) async throws(StorageError) {
        try await log.waitDurable(try log.append(Self.encode(settings)))
    }

    /// Kind 10: kind 9's fields, then `bool` members-only. (Kind 9, without it, is still read.)
    static func encode(_ settings: EventSettings) -> [UInt8] {
        var w = BinaryWriter(capacity: 16 + settings.id.utf8.count)
        w.u8(Self.eventSettingsMembers)
        w.string(settings.id)
        w.bool(settings.selfServiceCutoffHours != nil)
        if let hours = settings.selfServiceCutoffHours { w.svarint(hours) }
        w.bool(settings.membersOnly)
        return w.take()
    }

    private func end(_ status: BulkJobStatus, kind: UInt8) async throws(StorageError) {
        precondition(status.processed <= status.total, "a job processes at most the orders it selected")
        var w = BinaryWriter(capacity: 64 + status.skippedOrders.count * 32)
        w.u8(kind)
        w.string(status.jobID)
        w.uvarint(UInt64(status.total))
        if kind == Self.jobAborted { w.uvarint(UInt64(status.processed)) }
        w.uvarint(UInt64(status.skippedOrders.count))
        for issue in status.skippedOrders {
            w.string(issue.orderID)
            w.string(issue.reason)
        }
        try await log.waitDurable(try log.append(w.take()))
    }

    /// Records an acknowledgement and waits until it is durable.
    func acknowledged(upTo sequence: UInt64) async throws(StorageError) {
        var w = BinaryWriter(capacity: 12)
        w.u8(Self.eventsAcknowledged)
        w.uvarint(sequence)
        try await log.waitDurable(try log.append(w.take()))
    }

    /// Appends an engine-level event (durable within one group commit; readers of events wait for it).
    func append(_ event: OutboxEvent) throws(StorageError) -> UInt64 {
        var w = BinaryWriter(capacity: 96 + (event.text?.utf8.count ?? 0))
        w.u8(Self.engineEvent)
        w.uvarint(event.sequence)
        w.string(event.kind.rawValue)
        w.svarint(event.at.milliseconds)
        w.string(event.jobID ?? "")
        w.svarint(event.amount ?? 0)
        w.optionalString(event.text)
        return try log.append(w.take())
    }

    enum Record {
        case started(StartedJob)
        case queued(QueuedJob)
        /// A job paused (true) or resumed (false).
        case mode(jobID: String, paused: Bool)
        case eventSettings(EventSettings)
        case acknowledged(UInt64)
        case event(OutboxEvent)
    }

    static func decode(_ bytes: [UInt8]) throws(BinaryDecodingError) -> Record {
        var r = BinaryReader(bytes)
        let kind = try r.u8()
        switch kind {
        case jobStarted:
            let id = try r.string()
            var events: [String] = []
            for _ in 0..<(try bounded(&r)) { events.append(try r.string()) }
            let method = try r.u8()
            let channel = try r.u8()
            guard Int(method) <= TenderMethod.allCases.count, Int(channel) <= Channel.allCases.count else {
                throw BinaryDecodingError(message: "unknown filter code", offset: r.offset)
            }
            let options = try RefundOptionsCodec.decode(from: &r)
            let dryRun = try r.bool()
            let callerID = try r.string()
            var permissions = Set<Permission>()
            for _ in 0..<(try bounded(&r)) {
                let raw = try r.string()
                guard let permission = Permission(rawValue: raw) else {
                    throw BinaryDecodingError(message: "unknown permission \(raw)", offset: r.offset)
                }
                permissions.insert(permission)
            }
            try r.expectEnd()
            let request = BulkCancelRequest(
                events: events, paymentMethod: method == 0 ? nil : TenderMethod.allCases[Int(method) - 1],
                channel: channel == 0 ? nil : Channel.allCases[Int(channel) - 1], options: options, dryRun: dryRun)
            return .started(StartedJob(id: id, request: request, caller: Caller(id: callerID, permissions: permissions)))
        case jobQueued, jobAborted:
            let id = try r.string()
            let total = try r.uvarint()
            var processed: UInt64?
            if kind == jobAborted {
                let offset = r.offset
                processed = try r.uvarint()
                guard let processed, processed <= total else {
                    throw BinaryDecodingError(message: "an aborted job processed more orders than it selected", offset: offset)
                }
            }
            var skipped: [BulkOrderIssue] = []
            for _ in 0..<(try bounded(&r)) {
                skipped.append(BulkOrderIssue(orderID: try r.string(), reason: try r.string()))
            }
            try r.expectEnd()
            return .queued(
                QueuedJob(id: id, total: Int(clamping: total), skipped: skipped, abortedAfter: processed.map { Int(clamping: $0) }))
        case eventSettings, eventSettingsMembers:
            let id = try r.string()
            var hours: Int64?
            if try r.bool() {
                let offset = r.offset
                let value = try r.svarint()
                guard (0...EventSettings.maximumCutoffHours).contains(value) else {
                    throw BinaryDecodingError(message: "self-service cutoff \(value) h is out of range", offset: offset)
                }
                hours = value
            }
            let membersOnly = kind == eventSettingsMembers ? try r.bool() : false
            try r.expectEnd()
            return .eventSettings(EventSettings(id: id, selfServiceCutoffHours: hours, membersOnly: membersOnly))
        case jobPaused, jobResumed:
            let id = try r.string()
            try r.expectEnd()
            return .mode(jobID: id, paused: kind == jobPaused)
        case eventsAcknowledged:
            let upToOffset = r.offset
            let upTo = try r.uvarint()
            // Outbox numbers stay in 1...maxSequence (see SegmentFormat.maxSequence), so counting on from them
            // never wraps.
            guard upTo <= SegmentFormat.maxSequence else {
                throw BinaryDecodingError(message: "acknowledged sequence \(upTo) is out of range", offset: upToOffset)
            }
            try r.expectEnd()
            return .acknowledged(upTo)
        case engineEvent:
            let sequenceOffset = r.offset
            let sequence = try r.uvarint()
            guard sequence >= 1, sequence <= SegmentFormat.maxSequence else {
                throw BinaryDecodingError(message: "event sequence \(sequence) is out of range", offset: sequenceOffset)
            }
            let rawKind = try r.string()
            guard let eventKind = OutboxEvent.Kind(rawValue: rawKind) else {
                throw BinaryDecodingError(message: "unknown event kind \(rawKind)", offset: r.offset)
            }
            let at = Timestamp(milliseconds: try r.svarint())
            let jobID = try r.string()
            let amount = try r.svarint()
            let text = try r.optionalString()
            try r.expectEnd()
            return .event(
                OutboxEvent(
                    sequence: sequence, kind: eventKind, at: at, orderID: nil, refundID: nil,
                    jobID: jobID.isEmpty ? nil : jobID, notifyEmail: nil, amount: amount, currency: nil, text: text))
        default:
            throw BinaryDecodingError(message: "unknown control record kind \(kind)", offset: 0)
        }
    }

    private static func bounded(_ r: inout BinaryReader) throws(BinaryDecodingError) -> Int {
        let offset = r.offset
        let count = try r.uvarint()
        guard count <= UInt64(r.remaining) else {
            throw BinaryDecodingError(message: "count \(count) exceeds the bytes left", offset: offset)
        }
        return Int(count)
    }
}
