import NIOCore
import RefundCore
import RefundEngine
import Synchronization

/// Counters the `stats` op reports next to the engine's.
package final class ServerCounters: Sendable {
    package init() {}
    let connections = Atomic<Int>(0)
    let acceptedConnections = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    /// Refused at accept: `too_many_connections` or `shutting_down`.
    let rejectedConnections = Atomic<Int>(0)
    /// Unauthenticated connections closed to make room for a new one.
    let evictedConnections = Atomic<Int>(0)
    /// Wrong tokens.
    let authFailures = Atomic<Int>(0)
    /// Connections closed for not authenticating within the auth deadline.
    let authTimeouts = Atomic<Int>(0)
    /// Connections closed by the idle timeout (idle, or their responses not read).
    let idleTimeouts = Atomic<Int>(0)
    /// Times a connection's read loop stopped because its output was backed up.
    let backpressurePauses = Atomic<Int>(0)
}

/// Runs decoded operations against the engine and renders response lines.
package struct Dispatcher: Sendable {
    let engine: Engine
    let counters: ServerCounters
    let allocator = ByteBufferAllocator()
    let metrics = ServerMetrics()

    package init(engine: Engine, counters: ServerCounters) {
        self.engine = engine
        self.counters = counters
    }

    // MARK: Results

    struct OrderTimeline: Encodable, Sendable {
        var orderID: String
        var timeline: [TimelineItem]
        enum CodingKeys: String, CodingKey {
            case timeline
            case orderID = "order_id"
        }
    }

    /// A page of a list under its key (`refunds`, `requests`); `next_cursor` (always written, `null` at the end)
    /// continues it.
    struct PageResult<Item: Encodable & Sendable>: Encodable, Sendable {
        var key: String
        var items: [Item]
        var nextCursor: String?

        init(_ key: String, _ page: ListPage<Item>) {
            self.key = key
            self.items = page.items
            self.nextCursor = page.next
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: JSONMemberKey.self)
            try c.encode(items, forKey: JSONMemberKey(key))
            try c.encode(nextCursor, forKey: JSONMemberKey("next_cursor"))
        }
    }
    /// `order.put_many`'s terse answer: how many orders are stored (new, replaced, or already there with the same
    /// content), and each one refused, by its index in `orders`.
    struct PutManyResult: Encodable, Sendable {
        struct Rejected: Encodable, Sendable {
            var index: Int
            var orderID: String
            var code: String
            var message: String
            enum CodingKeys: String, CodingKey {
                case index, code, message
                case orderID = "order_id"
            }
        }
        var accepted: Int
        var rejected: [Rejected]
    }
    struct EventList: Encodable, Sendable { var events: [OutboxEvent] }
    struct Balance: Encodable, Sendable {
        var customer: String
        /// The balance in the requested currency (absent when none was asked for).
        var currency: String?
        var balance: Int64?
        /// Every currency the customer's balance has moved in: code → minor units.
        var balances: [String: Int64]
    }
    struct Inventory: Encodable, Sendable { var released: [String: Int64] }
    struct Empty: Encodable, Sendable {}
    /// `order.moderate` with an outcome per line: the refunds made, the cancellation without money first.
    struct Moderated: Encodable, Sendable { var refunds: [Refund] }
    struct Acknowledged: Encodable, Sendable {
        var upTo: UInt64
        enum CodingKeys: String, CodingKey { case upTo = "up_to" }
    }

    /// A receipt with its plain-text rendering.
    struct ReceiptResult: Encodable, Sendable {
        var receipt: Receipt
        func encode(to encoder: any Encoder) throws {
            try receipt.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(receipt.text, forKey: "text")
        }
    }

    struct Stats: Encodable, Sendable {
        struct ServerStats: Encodable, Sendable {
            var connections: Int
            var acceptedConnections: Int
            var requests: Int
            var errors: Int
            var rejectedConnections = 0
            var evictedConnections = 0
            var authFailures = 0
            var authTimeouts = 0
            var idleTimeouts = 0
            var backpressurePauses = 0
            /// CPU the daemon's process has used since it started (user and system, seconds): a load generator
            /// reads it before and after a run for the server's CPU per request.
            var cpuUserSeconds: Double = 0
            var cpuSystemSeconds: Double = 0
            enum CodingKeys: String, CodingKey {
                case connections, requests, errors
                case acceptedConnections = "accepted_connections"
                case rejectedConnections = "rejected_connections", evictedConnections = "evicted_connections"
                case authFailures = "auth_failures", authTimeouts = "auth_timeouts", idleTimeouts = "idle_timeouts"
                case backpressurePauses = "backpressure_pauses"
                case cpuUserSeconds = "cpu_user_seconds", cpuSystemSeconds = "cpu_system_seconds"
            }

            static func now(_ counters: ServerCounters) -> ServerStats {
                let cpu = ProcessCPU.now()
                return ServerStats(
                    connections: counters.connections.load(ordering: .relaxed),
                    acceptedConnections: counters.acceptedConnections.load(ordering: .relaxed),
                    requests: counters.requests.load(ordering: .relaxed), errors: counters.errors.load(ordering: .relaxed),
                    rejectedConnections: counters.rejectedConnections.load(ordering: .relaxed),
                    evictedConnections: counters.evictedConnections.load(ordering: .relaxed),
                    authFailures: counters.authFailures.load(ordering: .relaxed),
                    authTimeouts: counters.authTimeouts.load(ordering: .relaxed),
                    idleTimeouts: counters.idleTimeouts.load(ordering: .relaxed),
                    backpressurePauses: counters.backpressurePauses.load(ordering: .relaxed),
                    cpuUserSeconds: cpu.user, cpuSystemSeconds: cpu.system)
            }
        }
        struct Recovery: Encodable, Sendable {
            var ordersFromSnapshots: Int
            var recordsReplayed: Int
            var tornTails: [String]
            var repairs: [String]
            var skippedSnapshots: [String]
            var resumedJobs: [String]
            var missing: [String]
            var obsoleteSegments: [String]
            enum CodingKeys: String, CodingKey {
                case repairs, missing
                case ordersFromSnapshots = "orders_from_snapshots", recordsReplayed = "records_replayed"
                case tornTails = "torn_tails", skippedSnapshots = "skipped_snapshots", resumedJobs = "resumed_jobs"
                case obsoleteSegments = "obsolete_segments"
            }
        }
        var engine: Engine.Statistics
        var server: ServerStats
        var recovery: Recovery?
        var attention: Int
        var openRequests: Int

        func encode(to encoder: any Encoder) throws {
            try engine.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(server, forKey: "server")
            try c.encodeIfPresent(recovery, forKey: "recovery")
            try c.encode(attention, forKey: "attention")
            try c.encode(openRequests, forKey: "open_requests")
        }
    }

    // MARK: Execution

    /// Runs one operation (not `auth`, `hello` or `events.subscribe`, which the connection handles), once the caller is
    /// allowed to (``Operation/access``: every op has its permission).
    func execute(_ operation: Operation, caller: Caller, actorID: String?) async throws(RefundError)
        -> any Encodable & Sendable
    {
        try operation.authorize(caller, op: operation.name)
        switch operation {
        case .auth, .eventsSubscribe, .hello:
            throw RefundError(.invalidState, "handled by the connection")
        case .ping:
            return PingResult()
        case .health:
            return engine.health()
        case .orderPut(let order):
            return try await engine.putOrder(order, caller: actorID ?? "checkout")
        case .orderPutMany(let orders):
            let rejected = await engine.putOrders(orders, caller: actorID ?? "checkout")
            return PutManyResult(
                accepted: orders.count - rejected.count,
                rejected: rejected.map {
                    .init(index: $0.index, orderID: orders[$0.index].id, code: $0.error.code.rawValue, message: $0.error.message)
                })
        case .orderTransfer(let id, let line, let to, let pending):
            return try await engine.transferTicket(orderID: id, line: line, to: to, pending: pending, caller: caller)
        case .transferDecide(let id, let line, let accept):
            return try await engine.decideTransfer(orderID: id, line: line, accept: accept, caller: caller)
        case .orderUpdate(let id, let update):
            return try await engine.updateOrder(orderID: id, update, caller: caller)
        case .orderGet(let id, let include):
            let view = try await engine.order(id)
            if let include { return CompactOrderView(view: view, include: include) }
            return view
        case .orderList(let filter, let limit, let cursor):
            return PageResult("orders", try await engine.orderPage(filter, limit: limit, after: cursor))
        case .orderTimeline(let id):
            return OrderTimeline(orderID: id, timeline: try await engine.timelineItems(id))
        case .orderCancel(let id, let refund, let method, let reason, let note, let restock, let lines):
            return try await engine.cancelOrder(
                orderID: id, refund: refund, method: method, reason: reason, note: note, restock: restock, lines: lines,
                caller: caller)
        case .orderModerate(let id, let outcome, let note, let lines):
            return try await engine.moderate(orderID: id, outcome: outcome, note: note, lines: lines, caller: caller)
        case .orderModeratePerLine(let id, let outcomes, let note):
            let byLine = Dictionary(outcomes.map { ($0.line, $0.outcome) }, uniquingKeysWith: { first, _ in first })
            return Moderated(refunds: try await engine.moderate(orderID: id, outcomes: byLine, note: note, caller: caller))
        case .refundPreview(let id, let options):
            return try await engine.preview(orderID: id, options, caller: caller)
        case .refundCreate(let id, let options):
            return try await engine.createRefund(orderID: id, options, caller: caller)
        case .refundGet(let id):
            return try await engine.refund(id)
        case .refundList(let orderID, let event, let status, let limit, let cursor):
            let page = try await engine.refundPage(orderID: orderID, event: event, status: status, limit: limit, after: cursor)
            return PageResult("refunds", page)
        case .refundRequest(let id, let lines, let reason):
            return try await engine.requestRefund(orderID: id, lines: lines, reason: reason, caller: caller)
        case .refundApprove(let id, let options, let note):
            return try await engine.approveRequest(requestID: id, options, note: note, caller: caller)
        case .refundDecline(let id, let note):
            return try await engine.declineRequest(requestID: id, note: note, caller: caller)
        case .refundSettle(let id, let tender, let attempt, let succeeded, let reference, let failureCode, let retryable):
            // Settlements come from the payment side: they need the refund permission.
            try caller.require(.refund, for: "refund.settle")
            return try await engine.settle(
                refundID: id, tender: tender, attempt: attempt, succeeded: succeeded, reference: reference,
                failureCode: failureCode, retryable: retryable)
        case .refundRetry(let id):
            return try await engine.retry(refundID: id, caller: caller)
        case .refundRecover(let id, let action, let note):
            return try await engine.recover(refundID: id, action: action, note: note, caller: caller)
        case .refundReceipt(let id):
            return ReceiptResult(receipt: try await engine.receipt(refundID: id))
        case .refundResend(let id):
            return try await engine.resendConfirmation(refundID: id, caller: caller)
        case .refundAttention(let limit, let cursor):
            let page = try await engine.attentionPage(limit: limit, after: cursor)
            return PageResult("refunds", page)
        case .refundRequests(let limit, let cursor):
            let page = try await engine.openRequestPage(limit: limit, after: cursor)
            return PageResult("requests", page)
        case .disputeOpen(let id, let reason):
            return try await engine.openDispute(orderID: id, reason: reason, caller: caller)
        case .disputeClose(let id, let outcome, let note):
            return try await engine.closeDispute(orderID: id, outcome: outcome, note: note, caller: caller)
        case .balanceGet(let customer, let currency):
            try Handle.validate(customer, field: "customer")
            let all = await engine.balances(customer: customer)
            if let code = currency {
                guard let currency = Currency(code: code) else {
                    throw RefundError(.invalidCurrency, "currency '\(code.prefix(16))' is not an ISO 4217 code")
                }
                return Balance(
                    customer: customer, currency: currency.code,
                    balance: await engine.balance(customer: customer, currency: currency), balances: all)
            }
            return Balance(customer: customer, currency: nil, balance: nil, balances: all)
        case .inventoryGet(let ticketType):
            let released = await engine.inventoryReleased()
            if let ticketType { return Inventory(released: [ticketType: released[ticketType] ?? 0]) }
            return Inventory(released: released)
        case .bulkCancelEvent(let request, let wait):
            if wait { return try await engine.runBulkCancellation(request, caller: caller) }
            let jobID = try await engine.startBulkCancellation(request, caller: caller)
            return try await engine.durableBulkStatus(jobID: jobID)
        case .bulkStatus(let id):
            return try await engine.durableBulkStatus(jobID: id)
        case .bulkPause(let id):
            return try await engine.pauseBulk(jobID: id, caller: caller)
        case .bulkResume(let id):
            return try await engine.resumeBulk(jobID: id, caller: caller)
        case .bulkAbort(let id):
            return try await engine.abortBulk(jobID: id, caller: caller)
        case .eventPut(let settings):
            return try await engine.putEvent(settings, caller: caller)
        case .eventGet(let id):
            return try engine.eventSettings(id)
        case .bulkResults(let id, let outcome, let limit, let cursor):
            return PageResult(
                "results", try await engine.bulkResultsPage(jobID: id, outcome: outcome, limit: limit, after: cursor))
        case .eventsList(let after, let limit):
            return EventList(events: await engine.events(after: after, limit: limit))
        case .eventsAck(let upTo):
            try await engine.acknowledgeEvents(upTo: upTo)
            return Acknowledged(upTo: upTo)
        case .stats:
            let summary = engine.recoverySummary
            return Stats(
                engine: await engine.statistics(),
                server: .now(counters),
                recovery: summary.map {
                    .init(
                        ordersFromSnapshots: $0.ordersFromSnapshots, recordsReplayed: $0.recordsReplayed,
                        tornTails: $0.tornTails, repairs: $0.repairs, skippedSnapshots: $0.skippedSnapshots,
                        resumedJobs: $0.resumedJobs, missing: $0.missing, obsoleteSegments: $0.obsoleteSegments)
                },
                attention: await engine.attention(limit: Operation.maximumListLimit).count,
                openRequests: await engine.openRequests(limit: Operation.maximumListLimit).count)
        case .snapshot:
            try await engine.snapshot()
            return Empty()
        }
    }

    /// The hot operations a connection hands to the engine as one batch per read (``Engine/execute(_:)``), once
    /// the caller is allowed to run them; nil for every other op (it runs alone, ``execute(_:caller:actorID:)``).
    func batchable(_ operation: Operation, caller: Caller, actorID: String?) throws(RefundError) -> BatchRequest? {
        let request: BatchRequest
        switch operation {
        case .refundCreate(let id, let options): request = .createRefund(orderID: id, options: options, caller: caller)
        case .orderGet(let id, _): request = .order(id)
        case .refundGet(let id): request = .refund(id)
        case .orderPut(let order): request = .putOrder(order, caller: actorID ?? "checkout")
        default: return nil
        }
        try operation.authorize(caller, op: operation.name)
        return request
    }

    // MARK: Rendering

    /// `{"id":..,"ok":true,"result":{..}}\n`
    ///
    /// Rendered by ``JSONBytesEncoder`` (hand-written: Foundation's `JSONEncoder` took ~18 µs for a refund
    /// response here, see `JSON/JSONValue.swift`), straight into one byte array, then one buffer.
    package func success(id: WireID, _ result: any Encodable) -> ByteBuffer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.initialLineCapacity)
        bytes.append(contentsOf: #"{"id":"#.utf8)
        do {
            try id.append(to: &bytes, encoder: Self.encoder)
            bytes.append(contentsOf: #","ok":true,"result":"#.utf8)
            // The hot answers by hand (HotResponseEncoding), everything else through Encodable.
            if let refund = result as? Refund {
                try HotResponseEncoding.append(refund, to: &bytes, encoder: Self.encoder)
            } else if let view = result as? OrderView {
                try HotResponseEncoding.append(view, to: &bytes, encoder: Self.encoder)
            } else if let compact = result as? CompactOrderView {
                try HotResponseEncoding.append(compact, to: &bytes, encoder: Self.encoder)
            } else {
                try Self.encoder.encode(result, into: &bytes)
            }
        } catch {
            return failure(id: id, RefundError(.internalError, "the result could not be encoded"))
        }
        bytes.append(contentsOf: "}\n".utf8)
        return buffer(bytes)
    }

    static let encoder = JSONBytesEncoder()
    static let initialLineCapacity = 512

    private func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    struct ErrorBody: Encodable {
        var code: String
        var message: String
        var blocked: [BlockedItem]?
    }

    /// `{"id":..,"ok":false,"error":{"code":"..","message":".."}}\n` (plus `blocked` for eligibility errors).
    func failure(id: WireID, _ error: RefundError) -> ByteBuffer {
        counters.errors.add(1, ordering: .relaxed)
        let body = ErrorBody(
            code: error.code.rawValue, message: error.message, blocked: error.blocked.isEmpty ? nil : error.blocked)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.initialLineCapacity)
        bytes.append(contentsOf: #"{"id":"#.utf8)
        do {
            try id.append(to: &bytes, encoder: Self.encoder)
            bytes.append(contentsOf: #","ok":false,"error":"#.utf8)
            try Self.encoder.encode(body, into: &bytes)
        } catch {
            var buffer = allocator.buffer(capacity: 96)
            buffer.writeStaticString(
                "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"internal_error\",\"message\":\"encoding failed\"}}\n")
            return buffer
        }
        bytes.append(contentsOf: "}\n".utf8)
        return buffer(bytes)
    }

    /// `{"event":{..}}\n`
    func eventLine(_ event: OutboxEvent, encoder: JSONBytesEncoder) -> ByteBuffer? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.initialLineCapacity)
        bytes.append(contentsOf: #"{"event":"#.utf8)
        guard (try? encoder.encode(event, into: &bytes)) != nil else { return nil }
        bytes.append(contentsOf: "}\n".utf8)
        return buffer(bytes)
    }
}
