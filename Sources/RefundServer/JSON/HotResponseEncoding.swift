import RefundCore
import RefundEngine

/// Hand-written JSON for the answers the hot path sends most: a refund (`refund.create`, `refund.get`) and an
/// order view's own parts (`order.get`, `order.put`). Written by hand because the `Encodable` route through
/// ``JSONBytesEncoder`` cost about 9 µs of CPU per refund answer (a third of the daemon's time per
/// `refund.create` in the profile, docs/performance.md): every key and value goes through an existential
/// container and a witness table. The output is byte for byte what ``JSONBytesEncoder`` writes for the same value
/// (`HotResponseEncodingTests` checks it on random refunds and orders); rarely present parts (recoveries, late
/// answers, resends, refund requests) still go through the `Encodable` route.
enum HotResponseEncoding {
    /// Appends `refund` as JSON (`Refund.encode(to:)`'s keys, in its order).
    static func append(_ refund: Refund, to bytes: inout [UInt8], encoder: JSONBytesEncoder) throws {
        var o = ObjectWriter(&bytes)
        o.string("id", refund.id, &bytes)
        o.string("order_id", refund.orderID, &bytes)
        o.string("status", refund.status.rawValue, &bytes)
        o.string("method", refund.method.rawValue, &bytes)
        o.integer("amount", refund.amount, &bytes)
        o.integer("fee_retained", refund.feeRetained, &bytes)
        o.integer("tax", refund.tax, &bytes)
        o.integer("booking_fee", refund.bookingFee, &bytes)
        o.string("reason", refund.reason, &bytes)
        o.optionalString("note", refund.note, nullIfAbsent: true, &bytes)
        o.string("created_at", refund.createdAt.iso8601, &bytes)
        o.string("created_by", refund.createdBy, &bytes)
        o.bool("restock", refund.restock, &bytes)
        o.array("lines", refund.lines, &bytes) { line, bytes in
            var l = ObjectWriter(&bytes)
            l.string("line", line.line, &bytes)
            l.integer("amount", line.amount, &bytes)
            l.integer("tax", line.tax, &bytes)
            l.integer("fee_retained", line.feeRetained, &bytes)
            l.close(&bytes)
        }
        o.array("transactions", refund.transactions, &bytes) { transaction, bytes in
            append(transaction, to: &bytes)
        }
        if let recovery = refund.recovery { try o.encodable("recovery", recovery, &bytes, encoder) }
        if !refund.recoveries.isEmpty { try o.encodable("recoveries", refund.recoveries, &bytes, encoder) }
        if refund.recoveriesBeforeRetry != 0 {
            o.integer("recoveries_before_retry", Int64(refund.recoveriesBeforeRetry), &bytes)
        }
        o.optionalString("job_id", refund.jobID, &bytes)
        o.optionalString("request_id", refund.requestID, &bytes)
        if !refund.resentAt.isEmpty { try o.encodable("resent_at", refund.resentAt, &bytes, encoder) }
        if !refund.lateAnswers.isEmpty {
            try o.encodable("late_answers", refund.lateAnswers, &bytes, encoder)
            o.integer("over_refunded", refund.overRefunded, &bytes)
        }
        o.optionalString("attention_reason", refund.attentionReason, &bytes)
        if !refund.notify { o.bool("notify", false, &bytes) }
        o.optionalString("email_text", refund.emailText, &bytes)
        o.close(&bytes)
    }

    /// `RefundTransaction`'s synthesized encoding: its `CodingKeys` in declaration order, absent optionals left
    /// out (synthesized encoders follow the order of the `CodingKeys` cases, or of the stored properties when the
    /// type declares none).
    static func append(_ transaction: RefundTransaction, to bytes: inout [UInt8]) {
        var t = ObjectWriter(&bytes)
        t.optionalString("tender", transaction.tender, &bytes)
        t.string("method", transaction.method.rawValue, &bytes)
        t.integer("amount", transaction.amount, &bytes)
        t.string("status", transaction.status.rawValue, &bytes)
        t.integer("attempts", Int64(transaction.attempts), &bytes)
        t.array("failures", transaction.failures, &bytes) { failure, bytes in
            var f = ObjectWriter(&bytes)
            f.integer("attempt", Int64(failure.attempt), &bytes)
            f.string("at", failure.at.iso8601, &bytes)
            f.string("code", failure.code, &bytes)
            f.bool("retryable", failure.retryable, &bytes)
            f.close(&bytes)
        }
        t.optionalString("next_attempt_at", transaction.nextAttemptAt?.iso8601, &bytes)
        t.optionalString("gateway_ref", transaction.gatewayRef, &bytes)
        t.optionalString("settled_at", transaction.settledAt?.iso8601, &bytes)
        t.close(&bytes)
    }

    /// Appends an order view by hand; its requests through `Encodable` unless there are none.
    static func append(_ view: OrderView, to bytes: inout [UInt8], encoder: JSONBytesEncoder) throws {
        var o = ObjectWriter(&bytes)
        o.key("order", &bytes)
        append(view.order, to: &bytes)
        appendStanding(view, &o, to: &bytes)
        try o.array("refunds", view.refunds, &bytes) { refund, bytes in
            try append(refund, to: &bytes, encoder: encoder)
        }
        o.bool("disputed", view.disputed, &bytes)
        try appendRequests(view, &o, to: &bytes, encoder: encoder)
        o.close(&bytes)
    }

    /// `CompactOrderView.encode(to:)`: the order's id, event and currency, where it stands, then the parts asked for.
    static func append(_ compact: CompactOrderView, to bytes: inout [UInt8], encoder: JSONBytesEncoder) throws {
        let view = compact.view
        var o = ObjectWriter(&bytes)
        o.string("order_id", view.order.id, &bytes)
        o.string("event", view.order.event, &bytes)
        o.string("currency", view.order.currency.code, &bytes)
        appendStanding(view, &o, to: &bytes)
        o.bool("disputed", view.disputed, &bytes)
        if compact.include.contains(.order) {
            o.key("order", &bytes)
            append(view.order, to: &bytes)
        }
        if compact.include.contains(.refunds) {
            try o.array("refunds", view.refunds, &bytes) { refund, bytes in
                try append(refund, to: &bytes, encoder: encoder)
            }
        }
        if compact.include.contains(.requests) { try appendRequests(view, &o, to: &bytes, encoder: encoder) }
        o.close(&bytes)
    }

    private static func appendRequests(
        _ view: OrderView, _ o: inout ObjectWriter, to bytes: inout [UInt8], encoder: JSONBytesEncoder
    ) throws {
        if view.requests.isEmpty {
            o.key("requests", &bytes)
            bytes.append(contentsOf: [UInt8(ascii: "["), UInt8(ascii: "]")])
        } else {
            try o.encodable("requests", view.requests, &bytes, encoder)
        }
    }

    /// Status, totals, lines and tenders: where the order stands (both views).
    private static func appendStanding(_ view: OrderView, _ o: inout ObjectWriter, to bytes: inout [UInt8]) {
        o.string("status", view.status.rawValue, &bytes)
        o.key("totals", &bytes)
        var totals = ObjectWriter(&bytes)
        totals.integer("gross", view.totals.gross, &bytes)
        totals.integer("refunded", view.totals.refunded, &bytes)
        totals.integer("outstanding", view.totals.outstanding, &bytes)
        totals.integer("retained", view.totals.retained, &bytes)
        totals.integer("net", view.totals.net, &bytes)
        totals.close(&bytes)
        o.array("lines", view.lines, &bytes) { line, bytes in
            var l = ObjectWriter(&bytes)
            l.string("id", line.id, &bytes)
            l.string("kind", line.kind.rawValue, &bytes)
            l.string("status", line.status.rawValue, &bytes)
            l.optionalString("ticket_type", line.ticketType, &bytes)
            l.integer("paid_value", line.paidValue, &bytes)
            l.optionalString("holder", line.holder, &bytes)
            l.optionalString("holder_state", line.holderState?.rawValue, &bytes)
            if let transfers = line.transfers {
                l.array("transfers", transfers, &bytes) { transfer, bytes in
                    var t = ObjectWriter(&bytes)
                    t.string("line", transfer.line, &bytes)
                    t.optionalString("from", transfer.from, &bytes)
                    t.optionalString("to", transfer.to, &bytes)
                    t.string("at", transfer.at.iso8601, &bytes)
                    t.string("by", transfer.by, &bytes)
                    t.string("status", transfer.status.rawValue, &bytes)
                    t.optionalString("decided_at", transfer.decidedAt?.iso8601, &bytes)
                    t.optionalString("decided_by", transfer.decidedBy, &bytes)
                    t.close(&bytes)
                }
            }
            l.close(&bytes)
        }
        o.array("tenders", view.tenders, &bytes) { tender, bytes in
            var t = ObjectWriter(&bytes)
            t.string("id", tender.id, &bytes)
            t.string("method", tender.method.rawValue, &bytes)
            t.integer("amount", tender.amount, &bytes)
            t.integer("refunded", tender.refunded, &bytes)
            t.close(&bytes)
        }
    }

    /// `Order.encode(to:)`: every field, absent optionals as `null`; lines and tenders by their `CodingKeys`.
    static func append(_ order: Order, to bytes: inout [UInt8]) {
        var o = ObjectWriter(&bytes)
        o.string("id", order.id, &bytes)
        o.string("event", order.event, &bytes)
        o.optionalString("event_starts_at", order.eventStartsAt?.iso8601, nullIfAbsent: true, &bytes)
        o.optionalString("customer", order.customer, nullIfAbsent: true, &bytes)
        o.optionalString("email", order.email, nullIfAbsent: true, &bytes)
        o.string("currency", order.currency.code, &bytes)
        o.string("channel", order.channel.rawValue, &bytes)
        o.string("source", order.source.rawValue, &bytes)
        o.optionalString("parent", order.parent, nullIfAbsent: true, &bytes)
        o.bool("frozen", order.frozen, &bytes)
        o.bool("sync_pending", order.syncPending, &bytes)
        o.integer("booking_fee", order.bookingFee, &bytes)
        o.array("lines", order.lines, &bytes) { line, bytes in
            var l = ObjectWriter(&bytes)
            l.string("id", line.id, &bytes)
            l.string("kind", line.kind.rawValue, &bytes)
            l.integer("price", line.price, &bytes)
            l.integer("discount", line.discount, &bytes)
            l.integer("tax", line.tax, &bytes)
            l.bool("transferred", line.transferred, &bytes)
            l.bool("claimed", line.claimed, &bytes)
            l.optionalString("holder", line.holder, &bytes)
            l.optionalString("ticket_type", line.ticketType, &bytes)
            l.integer("processing_fee", line.processingFee, &bytes)
            l.integer("platform_fee", line.platformFee, &bytes)
            l.close(&bytes)
        }
        o.array("tenders", order.tenders, &bytes) { tender, bytes in
            var t = ObjectWriter(&bytes)
            t.string("id", tender.id, &bytes)
            t.string("method", tender.method.rawValue, &bytes)
            t.integer("amount", tender.amount, &bytes)
            t.optionalString("gateway_ref", tender.gatewayRef, &bytes)
            t.close(&bytes)
        }
        o.close(&bytes)
    }

    /// Writes one object's members: `{` at the start, a comma before each member after the first, `}` at the end.
    /// (The buffer is passed to each call rather than held, so nothing is copied.)
    struct ObjectWriter {
        private var first = true

        init(_ bytes: inout [UInt8]) { bytes.append(UInt8(ascii: "{")) }

        mutating func key(_ key: StaticString, _ bytes: inout [UInt8]) {
            if first { first = false } else { bytes.append(UInt8(ascii: ",")) }
            bytes.append(JSONText.quote)
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(JSONText.quote)
            bytes.append(UInt8(ascii: ":"))
        }

        mutating func string(_ key: StaticString, _ value: String, _ bytes: inout [UInt8]) {
            self.key(key, &bytes)
            JSONText.appendString(value, to: &bytes)
        }

        /// Left out when nil, or written as `null` with `nullIfAbsent`.
        mutating func optionalString(
            _ key: StaticString, _ value: String?, nullIfAbsent: Bool = false, _ bytes: inout [UInt8]
        ) {
            if let value {
                string(key, value, &bytes)
            } else if nullIfAbsent {
                self.key(key, &bytes)
                bytes.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
            }
        }

        mutating func integer(_ key: StaticString, _ value: Int64, _ bytes: inout [UInt8]) {
            self.key(key, &bytes)
            JSONText.appendInteger(value, to: &bytes)
        }

        mutating func bool(_ key: StaticString, _ value: Bool, _ bytes: inout [UInt8]) {
            self.key(key, &bytes)
            if value {
                bytes.append(contentsOf: [UInt8(ascii: "t"), UInt8(ascii: "r"), UInt8(ascii: "u"), UInt8(ascii: "e")])
            } else {
                bytes.append(contentsOf: [
                    UInt8(ascii: "f"), UInt8(ascii: "a"), UInt8(ascii: "l"), UInt8(ascii: "s"), UInt8(ascii: "e"),
                ])
            }
        }

        mutating func encodable<T: Encodable>(
            _ key: StaticString, _ value: T, _ bytes: inout [UInt8], _ encoder: JSONBytesEncoder
        ) throws {
            self.key(key, &bytes)
            try encoder.encode(value, into: &bytes)
        }

        /// `"key":[…]`, each element written by `element`.
        mutating func array<Items: Collection>(
            _ key: StaticString, _ items: Items, _ bytes: inout [UInt8],
            _ element: (Items.Element, inout [UInt8]) throws -> Void
        ) rethrows {
            self.key(key, &bytes)
            bytes.append(UInt8(ascii: "["))
            var first = true
            for item in items {
                if first { first = false } else { bytes.append(UInt8(ascii: ",")) }
                try element(item, &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        }

        func close(_ bytes: inout [UInt8]) { bytes.append(UInt8(ascii: "}")) }
    }
}
