/// Readable renderings of the protocol's results.
enum View {
    static func print(_ value: JSON, json: Bool, _ readable: (JSON) -> String) {
        Console.out(json ? value.pretty() : readable(value))
    }

    /// The order view: `{"order":{..},"status","totals","lines","tenders","refunds","disputed","requests"}`.
    static func order(_ view: JSON) -> String {
        let order = view["order"] ?? .null
        let currency = order["currency"]?.string
        var pairs: [(String, String)] = []
        for key in ["id", "event", "customer", "email", "currency", "channel", "source", "parent"] {
            if let value = order[key], !value.isNull { pairs.append((key, Render.cell(key, value, currency: currency))) }
        }
        pairs.append(("status", view["status"]?.string ?? "-"))
        pairs.append(("disputed", Render.cell("disputed", view["disputed"], currency: nil)))
        for (key, value) in Render.ordered(view["totals"]?.members ?? []) {
            pairs.append(("totals.\(key)", Render.cell(key, value, currency: currency)))
        }
        var out = Render.keyValues(pairs)
        let sections: [(String, [String])] = [
            ("lines", ["id", "kind", "ticket_type", "paid_value", "status", "holder_state", "holder"]),
            ("tenders", ["id", "method", "amount", "refunded"]),
            ("refunds", ["id", "status", "method", "amount", "fee_retained", "reason", "created_at"]),
            ("requests", ["id", "status", "lines", "reason", "requested_by", "created_at"]),
        ]
        for (key, columns) in sections {
            guard let items = view[key]?.array, !items.isEmpty else { continue }
            out += "\n\n\(key):\n" + Render.objects(items, columns: columns) { _ in currency }
        }
        return out
    }

    /// A refund (contract section 4). `currency`: the order's, when known.
    static func refund(_ refund: JSON, currency: String?) -> String {
        var pairs: [(String, String)] = []
        let skip: Set<String> = ["lines", "transactions", "recovery", "recoveries", "recoveries_before_retry"]
        for (key, value) in Render.ordered(refund.members ?? []) where !skip.contains(key) && !value.isNull {
            pairs.append((key, Render.cell(key, value, currency: currency)))
        }
        if let recovery = refund["recovery"], !recovery.isNull {
            for (key, value) in Render.ordered(recovery.members ?? []) { pairs.append(("recovery.\(key)", Render.cell(key, value, currency: currency))) }
        }
        var out = Render.keyValues(pairs)
        if let lines = refund["lines"]?.array, !lines.isEmpty {
            out += "\n\nlines:\n" + Render.objects(lines, columns: ["line", "amount", "fee_retained", "tax"]) { _ in currency }
        }
        if let recoveries = refund["recoveries"]?.array, !recoveries.isEmpty {
            out += "\n\nrecoveries:\n" + Render.objects(recoveries, columns: ["action", "note", "by", "at"]) { _ in currency }
        }
        if let transactions = refund["transactions"]?.array, !transactions.isEmpty {
            out += "\n\ntransactions:\n"
                + Render.objects(
                    transactions, columns: ["tender", "method", "amount", "status", "attempts", "gateway_ref", "failures"]
                ) { _ in currency }
        }
        return out
    }

    static let refundColumns = ["id", "order_id", "status", "method", "amount", "fee_retained", "reason", "created_at"]

    /// A list of refunds; `currencies`: order id → currency.
    static func refunds(_ refunds: [JSON], currencies: [String: String]) -> String {
        if refunds.isEmpty { return "(no refunds)" }
        return Render.objects(refunds, columns: refundColumns) { currencies[$0["order_id"]?.string ?? ""] }
    }

    /// `bulk.status` as a summary table.
    static func bulk(_ status: JSON, currency: String?) -> String {
        // The job's own currency when it has one (a job over several currencies has none: the caller's guess).
        let currency = status["currency"]?.string ?? currency
        let dryRun = status["dry_run"]?.bool == true
        func money(_ key: String) -> String {
            let value = status[key]?.int ?? 0
            return currency == nil ? "\(value) (minor units)" : Money.format(value, currency)
        }
        var rows: [[String]] = [
            ["job", status["job_id"]?.string ?? "-"],
            ["state", (status["state"]?.string ?? "-") + (dryRun ? " (dry run)" : "")],
            ["orders", String(status["total"]?.int ?? 0)],
            ["processed", String(status["processed"]?.int ?? 0)],
            [dryRun ? "would refund (orders)" : "succeeded", String(status["succeeded"]?.int ?? 0)],
            ["pending", String(status["pending"]?.int ?? 0)],
            ["failed", String(status["failed"]?.int ?? 0)],
            ["skipped", String(status["skipped"]?.int ?? 0)],
            [dryRun ? "would refund" : "refunded", money("refunded")],
            ["fee retained", money("fee_retained")],
        ]
        let pace = CancelEvent.pace(status)
        if !pace.isEmpty { rows.insert(["pace", String(pace.dropFirst(2))], at: 4) }
        var reasons: [String: Int] = [:]
        for item in status["skipped_orders"]?.array ?? [] { reasons[item["reason"]?.string ?? "?", default: 0] += 1 }
        for (reason, count) in reasons.sorted(by: { $0.key < $1.key }) { rows.append(["  skipped: \(reason)", String(count)]) }
        var out = Render.keyValues(rows.map { ($0[0], $0[1]) })
        if let failed = status["failed_orders"]?.array, !failed.isEmpty {
            out += "\n\nfailed orders:\n" + Render.objects(Array(failed.prefix(50)))
            if failed.count > 50 { out += "\n… \(failed.count - 50) more (--json for all)" }
        }
        return out
    }

    /// The first order id named in a bulk status (to look up the event's currency).
    static func anyOrderID(_ status: JSON) -> String? {
        for key in ["skipped_orders", "failed_orders"] {
            if let id = status[key]?.array?.first?["order_id"]?.string { return id }
        }
        return nil
    }
}

extension Client {
    /// The currency of each order (one pipelined `order.get` per distinct order); unknown ones are left out.
    func currencies(of orderIDs: [String]) -> [String: String] {
        var seen = Set<String>()
        let unique = orderIDs.filter { seen.insert($0).inserted }
        guard !unique.isEmpty,
            let results = try? callAll(unique.map { ("order.get", [("order_id", JSON.string($0))]) })
        else { return [:] }
        var out: [String: String] = [:]
        for (id, result) in zip(unique, results) {
            if case .success(let view) = result, let code = view["order"]?["currency"]?.string { out[id] = code }
        }
        return out
    }

    func currency(ofOrder id: String?) -> String? {
        guard let id else { return nil }
        return currencies(of: [id])[id]
    }

    /// The currency of an event's orders: from a known order, else from the event's first refund.
    func currency(ofEvent event: String, knownOrder: String?) -> String? {
        if let code = currency(ofOrder: knownOrder) { return code }
        let list = try? call("refund.list", ["event": .string(event), "limit": 1])
        return currency(ofOrder: list?["refunds"]?.array?.first?["order_id"]?.string)
    }
}
