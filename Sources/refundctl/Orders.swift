import RefundServer
import ArgumentParser

/// `refundctl orders`: `order.list` as a table (or `--json`), following `next_cursor` up to `--limit` rows.
struct Orders: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find orders: by event, customer, email, status, dispute, or a refund pending or failed.",
        discussion: """
            Orders are sorted by id. Every filter given must hold. Money is shown in each order's currency. \
            Examples: refundctl orders --event evt_1 --status partially_refunded; refundctl orders --refunds failed; \
            refundctl orders --email a@example.com --json.
            """)
    @Option var event: String?
    @Option var customer: String?
    @Option var email: String?
    @Option(help: "completed | partially_refunded | refunded | cancelled.") var status: String?
    @Flag(inversion: .prefixedNo, help: "Only orders with (--disputed) or without (--no-disputed) an open dispute.")
    var disputed: Bool?
    @Option(help: "pending | failed: only orders with a refund pending, or failed and not recovered.") var refunds: String?
    @Option(help: "At most this many orders (default: all).") var limit: Int?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    static let columns = ["id", "event", "customer", "status", "gross", "refunded", "outstanding", "refunds", "flags"]

    func run() throws {
        try reporting {
            let result = try connection.connect().callPaged(
                "order.list",
                [
                    ("event", event.map(JSON.string) ?? .null), ("customer", customer.map(JSON.string) ?? .null),
                    ("email", email.map(JSON.string) ?? .null), ("status", status.map(JSON.string) ?? .null),
                    ("disputed", disputed.map(JSON.bool) ?? .null), ("refunds", refunds.map(JSON.string) ?? .null),
                ], key: "orders", limit: limit)
            View.print(result, json: output.json) { result in
                let orders = result["orders"]?.array ?? []
                if orders.isEmpty { return "(no orders)" }
                let rows = orders.map { order -> [String] in
                    let currency = order["currency"]?.string
                    var flags: [String] = []
                    if order["disputed"]?.bool == true { flags.append("disputed") }
                    if order["refund_pending"]?.bool == true { flags.append("refund pending") }
                    if order["refund_failed"]?.bool == true { flags.append("refund failed") }
                    return [
                        order["id"]?.string ?? "", order["event"]?.string ?? "", order["customer"]?.string ?? "-",
                        order["status"]?.string ?? "", Money.format(order["gross"]?.int ?? 0, currency),
                        Money.format(order["refunded"]?.int ?? 0, currency),
                        Money.format(order["outstanding"]?.int ?? 0, currency), String(order["refunds"]?.int ?? 0),
                        flags.joined(separator: ", "),
                    ]
                }
                return Render.table(Self.columns, rows) + "\n\(orders.count) order\(orders.count == 1 ? "" : "s")"
            }
        }
    }
}
