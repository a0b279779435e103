import RefundCore
import RefundEngine

/// Every operation of the protocol, with its decoded parameters (contract section 7; `docs/protocol.md`).
enum Operation: Sendable {
    case auth(token: String)
    case ping
    /// `hello`: the protocol version this connection speaks from now on (nil: say which it speaks).
    case hello(protocolVersion: Int?)
    /// Ready (recovered and running) or not, and why.
    case health
    case orderPut(Order)
    /// `order.put_many`: up to ``maximumOrdersPerPut`` orders in one request, stored with one hop per partition.
    case orderPutMany([Order])
    /// `order.update`: facts that are not money.
    case orderUpdate(orderID: String, OrderFactsUpdate)
    /// `order.transfer`: a ticket to another holder (`to` null: back to the purchaser).
    case orderTransfer(orderID: String, line: String, to: String?, pending: Bool)
    /// `transfer.accept` / `transfer.cancel`: the transfer pending on a line.
    case transferDecide(orderID: String, line: String, accept: Bool)
    /// `order.get`; `include` (nil: the full view) names the heavy parts of a compact view.
    case orderGet(orderID: String, include: Set<OrderViewPart>?)
    /// `order.list`: orders by event, customer, email, status, dispute or refund condition, sorted by id, paged.
    case orderList(OrderFilter, limit: Int, cursor: String?)
    case orderTimeline(orderID: String)
    case orderCancel(
        orderID: String, refund: Bool, method: RefundMethod, reason: String, note: String?, restock: Bool,
        lines: [String]?)
    case orderModerate(orderID: String, outcome: Engine.ModerationOutcome, note: String?, lines: [String]?)
    /// `order.moderate` with `outcomes`: an outcome per line, sorted by line id.
    case orderModeratePerLine(orderID: String, outcomes: [LineOutcome], note: String?)
    case refundPreview(orderID: String, RefundOptions)
    case refundCreate(orderID: String, RefundOptions)
    case refundGet(refundID: String)
    case refundList(orderID: String?, event: String?, status: TransactionStatus?, limit: Int, cursor: String?)
    case refundRequest(orderID: String, lines: [String]?, reason: String)
    case refundApprove(requestID: String, RefundOptions, note: String?)
    case refundDecline(requestID: String, note: String?)
    case refundSettle(
        refundID: String, tender: String, attempt: Int?, succeeded: Bool, reference: String?, failureCode: String?,
        retryable: Bool)
    case refundRetry(refundID: String)
    case refundRecover(refundID: String, action: RecoveryAction, note: String)
    case refundReceipt(refundID: String)
    case refundResend(refundID: String)
    case refundAttention(limit: Int, cursor: String?)
    case refundRequests(limit: Int, cursor: String?)
    case disputeOpen(orderID: String, reason: String?)
    case disputeClose(orderID: String, outcome: DisputeOutcome, note: String?)
    case balanceGet(customer: String, currency: String?)
    case inventoryGet(ticketType: String?)
    case bulkCancelEvent(BulkCancelRequest, wait: Bool)
    case bulkStatus(jobID: String)
    /// `bulk.pause`, `bulk.resume`, `bulk.abort`: steer a running job.
    case bulkPause(jobID: String)
    case bulkResume(jobID: String)
    case bulkAbort(jobID: String)
    /// `bulk.results`: each order of a job with what became of it, paged.
    case bulkResults(jobID: String, outcome: BulkOrderResult.Outcome?, limit: Int, cursor: String?)
    case eventsSubscribe(after: UInt64)
    case eventsList(after: UInt64, limit: Int)
    case eventsAck(upTo: UInt64)
    /// `event.put`, `event.get`: an event's settings.
    case eventPut(EventSettings)
    case eventGet(event: String)
    case stats
    case snapshot

    /// Every op name, for `unknown_op` messages and the docs.
    static let names = [
        "auth", "ping", "hello", "health", "order.put", "order.put_many", "order.update", "order.transfer", "transfer.accept", "transfer.cancel", "order.get", "order.list", "order.timeline", "order.cancel", "order.moderate", "refund.preview",
        "refund.create", "refund.get", "refund.list", "refund.request", "refund.approve", "refund.decline",
        "refund.settle", "refund.retry", "refund.recover", "refund.receipt", "refund.resend", "refund.attention",
        "refund.requests", "dispute.open", "dispute.close", "balance.get", "inventory.get", "bulk.cancel_event",
        "bulk.status", "bulk.results", "bulk.pause", "bulk.resume", "bulk.abort", "event.put", "event.get", "events.subscribe", "events.list", "events.ack", "stats", "snapshot",
    ]

    /// The most items a list op answers at once (`limit` above it gets this many, and a cursor to continue).
    static let maximumPageSize = Engine.maximumPageSize
    /// The most orders one `order.put_many` carries (a line is at most 1 MiB anyway).
    static let maximumOrdersPerPut = 5_000
    /// The most items `stats` counts in the attention queue and the open requests.
    static let maximumListLimit = 10_000

    static func decode(op: String, _ c: KeyedDecodingContainer<Key>, _ decoder: any Decoder) throws -> Operation {
        func string(_ key: Key) throws -> String { try c.decode(String.self, forKey: key) }
        func optionalString(_ key: Key) throws -> String? { try c.decodeIfPresent(String.self, forKey: key) }
        func lines() throws -> [String]? { try c.decodeIfPresent([String].self, forKey: "lines") }
        /// A page's size: `limit` (default and most: ``maximumPageSize``; a larger one is served as the most, with
        /// a cursor to continue, so old clients that asked for up to 10,000 still work).
        func limit() throws -> Int {
            guard let value = try c.decodeIfPresent(Int.self, forKey: "limit") else { return maximumPageSize }
            guard value >= 1 else {
                throw RefundError(.invalidField, "limit must be at least 1 (a page holds at most \(maximumPageSize))")
            }
            return min(value, maximumPageSize)
        }
        func cursor() throws -> String? { try c.decodeIfPresent(String.self, forKey: "cursor") }
        switch op {
        case "auth": return .auth(token: try string("token"))
        case "ping": return .ping
        case "hello": return .hello(protocolVersion: try c.decodeIfPresent(Int.self, forKey: "protocol_version"))
        case "health": return .health
        case "order.put":
            // The direct reader for a plainly well-formed order; the Decodable path for anything else (it names
            // the error).
            if let value = try c.decodeIfPresent(JSONValue.self, forKey: "order"), let order = DirectOrderDecoding.order(value) {
                return .orderPut(order)
            }
            return .orderPut(try c.decode(Order.self, forKey: "order"))
        case "order.put_many":
            var orders: [Order] = []
            if case .array(let values) = try c.decodeIfPresent(JSONValue.self, forKey: "orders") ?? .null {
                orders.reserveCapacity(values.count)
                for value in values {
                    guard let order = DirectOrderDecoding.order(value) else { break }
                    orders.append(order)
                }
                if orders.count != values.count { orders = [] }
            }
            if orders.isEmpty { orders = try c.decode([Order].self, forKey: "orders") }
            guard (1...maximumOrdersPerPut).contains(orders.count) else {
                throw RefundError(
                    .invalidField, "orders must hold 1 to \(maximumOrdersPerPut) orders, not \(orders.count)")
            }
            return .orderPutMany(orders)
        case "order.update":
            return .orderUpdate(
                orderID: try string("order_id"),
                OrderFactsUpdate(
                    frozen: try c.decodeIfPresent(Bool.self, forKey: "frozen"),
                    syncPending: try c.decodeIfPresent(Bool.self, forKey: "sync_pending"),
                    lines: try c.decodeIfPresent([OrderFactsUpdate.Line].self, forKey: "lines") ?? []))
        case "order.transfer":
            // `to` must be there: null is a choice (back to the purchaser), not a field left out.
            guard c.contains("to") else {
                throw RefundError(.missingField, "to is required (a holder id, or null for the purchaser)")
            }
            return .orderTransfer(
                orderID: try string("order_id"), line: try string("line"),
                to: try c.decodeIfPresent(String.self, forKey: "to"),
                pending: try c.decodeIfPresent(Bool.self, forKey: "pending") ?? false)
        case "transfer.accept", "transfer.cancel":
            return .transferDecide(orderID: try string("order_id"), line: try string("line"), accept: op == "transfer.accept")
        case "order.get":
            return .orderGet(
                orderID: try string("order_id"),
                include: try c.decodeIfPresent([OrderViewPart].self, forKey: "include").map(Set.init))
        case "order.list":
            let filter = OrderFilter(
                event: try optionalString("event"), customer: try optionalString("customer"),
                email: try optionalString("email"), status: try c.decodeIfPresent(OrderStatus.self, forKey: "status"),
                disputed: try c.decodeIfPresent(Bool.self, forKey: "disputed"),
                refunds: try c.decodeIfPresent(OrderFilter.RefundCondition.self, forKey: "refunds"))
            return .orderList(filter, limit: try limit(), cursor: try cursor())
        case "order.timeline": return .orderTimeline(orderID: try string("order_id"))
        case "order.cancel":
            return .orderCancel(
                orderID: try string("order_id"), refund: try c.decodeIfPresent(Bool.self, forKey: "refund") ?? true,
                method: try c.decodeIfPresent(RefundMethod.self, forKey: "method") ?? .original,
                reason: try string("reason"), note: try optionalString("note"),
                restock: try c.decodeIfPresent(Bool.self, forKey: "restock") ?? true, lines: try lines())
        case "order.moderate":
            if c.contains("outcomes") {
                guard !c.contains("outcome"), !c.contains("lines") else {
                    throw RefundError(
                        .invalidField, "order.moderate: give outcome (and lines) or outcomes (an outcome per line), not both")
                }
                let outcomes = try c.decode([String: Engine.ModerationOutcome].self, forKey: "outcomes")
                return .orderModeratePerLine(
                    orderID: try string("order_id"),
                    outcomes: outcomes.sorted { $0.key < $1.key }.map { LineOutcome(line: $0.key, outcome: $0.value) },
                    note: try optionalString("note"))
            }
            return .orderModerate(
                orderID: try string("order_id"), outcome: try c.decode(Engine.ModerationOutcome.self, forKey: "outcome"),
                note: try optionalString("note"), lines: try lines())
        case "refund.preview":
            return .refundPreview(
                orderID: try string("order_id"), try lenientOptions(c, method: .original, reason: "preview"))
        case "refund.create":
            let orderID = try string("order_id")
            let options = try RefundOptions(from: decoder)
            // A dry run answers what refund.preview answers for these options, and changes nothing.
            if try c.decodeIfPresent(Bool.self, forKey: "dry_run") ?? false {
                return .refundPreview(orderID: orderID, options)
            }
            return .refundCreate(orderID: orderID, options)
        case "refund.get": return .refundGet(refundID: try string("refund_id"))
        case "refund.list":
            return .refundList(
                orderID: try optionalString("order_id"), event: try optionalString("event"),
                status: try c.decodeIfPresent(TransactionStatus.self, forKey: "status"), limit: try limit(),
                cursor: try cursor())
        case "refund.request":
            return .refundRequest(orderID: try string("order_id"), lines: try lines(), reason: try string("reason"))
        case "refund.approve":
            return .refundApprove(
                requestID: try string("request_id"), try lenientOptions(c, method: .original, reason: "customer_request"),
                note: try optionalString("admin_note") ?? optionalString("note"))
        case "refund.decline":
            return .refundDecline(
                requestID: try string("request_id"), note: try optionalString("admin_note") ?? optionalString("note"))
        case "refund.settle":
            return .refundSettle(
                refundID: try string("refund_id"), tender: try string("tender"),
                attempt: try c.decodeIfPresent(Int.self, forKey: "attempt"),
                succeeded: try c.decode(Bool.self, forKey: "succeeded"), reference: try optionalString("reference"),
                failureCode: try optionalString("failure_code"),
                retryable: try c.decodeIfPresent(Bool.self, forKey: "retryable") ?? false)
        case "refund.retry": return .refundRetry(refundID: try string("refund_id"))
        case "refund.recover":
            return .refundRecover(
                refundID: try string("refund_id"), action: try c.decode(RecoveryAction.self, forKey: "action"),
                note: try string("note"))
        case "refund.receipt": return .refundReceipt(refundID: try string("refund_id"))
        case "refund.resend": return .refundResend(refundID: try string("refund_id"))
        case "refund.attention": return .refundAttention(limit: try limit(), cursor: try cursor())
        case "refund.requests": return .refundRequests(limit: try limit(), cursor: try cursor())
        case "dispute.open": return .disputeOpen(orderID: try string("order_id"), reason: try optionalString("reason"))
        case "dispute.close":
            return .disputeClose(
                orderID: try string("order_id"), outcome: try c.decode(DisputeOutcome.self, forKey: "outcome"),
                note: try optionalString("note"))
        case "balance.get": return .balanceGet(customer: try string("customer"), currency: try optionalString("currency"))
        case "inventory.get": return .inventoryGet(ticketType: try optionalString("ticket_type"))
        case "bulk.cancel_event":
            let options = try RefundOptions(from: decoder)
            let dryRun = try c.decodeIfPresent(Bool.self, forKey: "dry_run") ?? false
            let request = BulkCancelRequest(
                events: try c.decode([String].self, forKey: "events"),
                paymentMethod: try c.decodeIfPresent(TenderMethod.self, forKey: "payment_method"),
                channel: try c.decodeIfPresent(Channel.self, forKey: "channel"), options: options, dryRun: dryRun)
            let wait = try c.decodeIfPresent(Bool.self, forKey: "wait") ?? false
            return .bulkCancelEvent(request, wait: dryRun || wait)
        case "bulk.status": return .bulkStatus(jobID: try string("job_id"))
        case "event.put":
            return .eventPut(
                EventSettings(
                    id: try string("event"),
                    selfServiceCutoffHours: try c.decodeIfPresent(Int64.self, forKey: "self_service_cutoff_hours"),
                    membersOnly: try c.decodeIfPresent(Bool.self, forKey: "members_only") ?? false))
        case "event.get": return .eventGet(event: try string("event"))
        case "bulk.pause": return .bulkPause(jobID: try string("job_id"))
        case "bulk.resume": return .bulkResume(jobID: try string("job_id"))
        case "bulk.abort": return .bulkAbort(jobID: try string("job_id"))
        case "bulk.results":
            return .bulkResults(
                jobID: try string("job_id"), outcome: try c.decodeIfPresent(BulkOrderResult.Outcome.self, forKey: "status"),
                limit: try limit(), cursor: try cursor())
        case "events.subscribe":
            return .eventsSubscribe(after: try c.decodeIfPresent(UInt64.self, forKey: "after") ?? 0)
        case "events.list":
            return .eventsList(after: try c.decodeIfPresent(UInt64.self, forKey: "after") ?? 0, limit: try limit())
        case "events.ack": return .eventsAck(upTo: try c.decode(UInt64.self, forKey: "up_to"))
        case "stats": return .stats
        case "snapshot": return .snapshot
        default:
            throw RefundError(.unknownOp, "unknown op '\(op.prefix(64))'; see docs/protocol.md for the list")
        }
    }

    /// Refund options where `method` and `reason` may be left out (preview, approve).
    private static func lenientOptions(_ c: KeyedDecodingContainer<Key>, method: RefundMethod, reason: String) throws
        -> RefundOptions
    {
        var o = RefundOptions(
            method: try c.decodeIfPresent(RefundMethod.self, forKey: "method") ?? method,
            reason: try c.decodeIfPresent(String.self, forKey: "reason") ?? reason)
        o.lines = try c.decodeIfPresent([String].self, forKey: "lines")
        o.fee = try c.decodeIfPresent(CancellationFee.self, forKey: "fee")
        o.includeProcessingFees = try c.decodeIfPresent(Bool.self, forKey: "include_processing_fees") ?? true
        o.includePlatformFees = try c.decodeIfPresent(Bool.self, forKey: "include_platform_fees") ?? false
        o.includeBookingFee = try c.decodeIfPresent(Bool.self, forKey: "include_booking_fee") ?? false
        o.policy = try c.decodeIfPresent(RefundPolicy.self, forKey: "policy") ?? .standard
        o.note = try c.decodeIfPresent(String.self, forKey: "note")
        o.restock = try c.decodeIfPresent(Bool.self, forKey: "restock") ?? true
        o.notify = try c.decodeIfPresent(Bool.self, forKey: "notify") ?? true
        o.emailText = try c.decodeIfPresent(String.self, forKey: "email_text")
        o.idempotencyKey = try c.decodeIfPresent(String.self, forKey: "idempotency_key")
        o.selfService = try c.decodeIfPresent(Bool.self, forKey: "self_service") ?? false
        return o
    }

    /// The answer may be large (a page of a list, a timeline, a bulk job's lists of orders): such requests run one
    /// at a time per connection, each once the previous large answer is written (a client that pipelines lists
    /// and reads nothing holds one page in the server, not one per request).
    var mayAnswerLarge: Bool {
        switch self {
        case .orderList, .refundList, .refundAttention, .refundRequests, .eventsList, .orderTimeline, .bulkStatus,
            .bulkResults, .bulkCancelEvent, .bulkPause, .bulkResume, .bulkAbort:
            true
        default: false
        }
    }

    /// Every order a request is about: requests about one order on one connection run in the order sent.
    var orderKeys: [String] {
        if case .orderPutMany(let orders) = self { return orders.map(\.id) }
        return orderKey.map { [$0] } ?? []
    }

    /// The order a request is about: requests about one order on one connection run in the order sent.
    var orderKey: String? {
        switch self {
        case .orderPut(let order): order.id
        case .orderGet(let id, _), .orderTimeline(let id), .orderUpdate(let id, _), .orderTransfer(let id, _, _, _), .transferDecide(let id, _, _), .orderCancel(let id, _, _, _, _, _, _),
            .orderModerate(let id, _, _, _), .orderModeratePerLine(let id, _, _),
            .refundPreview(let id, _), .refundCreate(let id, _), .refundRequest(let id, _, _), .disputeOpen(let id, _),
            .disputeClose(let id, _, _):
            id
        case .refundGet(let id), .refundSettle(let id, _, _, _, _, _, _), .refundRetry(let id), .refundRecover(let id, _, _),
            .refundReceipt(let id), .refundResend(let id):
            RefundID.parse(id)?.order
        case .refundApprove(let id, _, _), .refundDecline(let id, _):
            RequestID.parse(id)?.order
        case .refundList(let orderID, _, _, _, _): orderID
        default: nil
        }
    }
}

/// One line's moderation outcome (`order.moderate` with `outcomes`).
struct LineOutcome: Sendable, Equatable {
    var line: String
    var outcome: Engine.ModerationOutcome
}
