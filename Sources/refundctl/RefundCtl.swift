import RefundServer
import ArgumentParser
import Foundation
import RefundCore

@main
struct RefundCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refundctl",
        abstract: "The command-line client of refundd (the line-delimited JSON protocol, docs/protocol.md).",
        discussion: """
            Connects to 127.0.0.1:7654 unless told otherwise (--host/--port, REFUNDD_HOST/REFUNDD_PORT, or \
            --unix-socket). Money is shown with the currency's decimals; --json prints the raw result. Errors are \
            printed as 'error <code>: <message>' on stderr, with exit status 1.
            """,
        version: "refundctl \(RefundEngineVersion.description)",
        subcommands: [
            OrderCommand.self, RefundCommand.self, DisputeCommand.self, Balance.self, Inventory.self, BulkCommand.self,
            Events.self, Stats.self, Snapshot.self, Ping.self, Call.self, Import.self, CancelEvent.self, Attention.self,
            Receipt.self, Wal.self, Bench.self, Orders.self, EventCommand.self,
        ])
}

/// Reads a JSON file (or stdin for `-`).
func readJSONFile(_ path: String) throws(ClientError) -> JSON {
    let data: Data
    if path == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw ClientError("invalid_argument", "cannot read \(path)")
        }
        data = contents
    }
    do {
        return try JSONParser.parse([UInt8](data))
    } catch {
        throw ClientError("invalid_json", "\(path): \(error)")
    }
}

// MARK: - order

struct OrderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order", abstract: "Orders: put, get, update, transfer, timeline, cancel, moderate.",
        subcommands: [Put.self, Get.self, Update.self, Transfer.self, Timeline.self, Cancel.self, Moderate.self])

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store an order (contract section 2) from FILE or - (stdin).")
        @Argument(help: "A JSON file with the order, or - for stdin.") var file: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let order = try readJSONFile(file)
                let client = try connection.connect()
                let view = try client.call("order.put", ["order": order])
                View.print(view, json: output.json, View.order)
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an order: totals, lines, tenders, refunds.")
        @Argument var orderID: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let view = try connection.connect().call("order.get", ["order_id": .string(orderID)])
                View.print(view, json: output.json, View.order)
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change facts of an order that are not money (also after refunds).",
            discussion: "Example: refundctl order update ord_1 --transferred l2=false (the ticket is back with the purchaser).")
        @Argument var orderID: String
        @Option(help: "true | false.") var frozen: Bool?
        @Option(name: .customLong("sync-pending"), help: "true | false.") var syncPending: Bool?
        @Option(help: "LINE=true|false: the ticket was transferred to someone else after checkout (repeatable).")
        var transferred: [String] = []
        @Option(help: "LINE=true|false: the gift voucher was claimed (repeatable).") var claimed: [String] = []
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                var params: [(String, JSON)] = [("order_id", .string(orderID))]
                if let frozen { params.append(("frozen", .bool(frozen))) }
                if let syncPending { params.append(("sync_pending", .bool(syncPending))) }
                var lines: [(id: String, fields: [(String, JSON)])] = []
                for (name, items) in [("transferred", transferred), ("claimed", claimed)] {
                    for item in items {
                        let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                        guard parts.count == 2, !parts[0].isEmpty, let value = Bool(parts[1]) else {
                            throw ClientError("invalid_argument", "--\(name) \(item): expected LINE=true or LINE=false")
                        }
                        if let i = lines.firstIndex(where: { $0.id == parts[0] }) {
                            lines[i].fields.append((name, .bool(value)))
                        } else {
                            lines.append((parts[0], [(name, .bool(value))]))
                        }
                    }
                }
                if !lines.isEmpty {
                    params.append(("lines", .array(lines.map { JSON.object([("id", .string($0.id))] + $0.fields) })))
                }
                let client = try connection.connect()
                let view = try client.call("order.update", params)
                View.print(view, json: output.json) { View.order($0) }
            }
        }
    }

    struct Transfer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a ticket to another holder; the purchaser stays the refund owner.",
            discussion:
                "Examples: refundctl order transfer ord_1 --line l1 --to att_7; refundctl order transfer ord_1 --line l1 --to-purchaser (back with the purchaser: refundable again); --pending asks for the move, which --accept or --cancel decides later.")
        @Argument var orderID: String
        @Option(help: "The ticket line.") var line: String
        @Option(help: "The new holder's id.") var to: String?
        @Flag(name: .customLong("to-purchaser"), help: "Back to the purchaser.") var toPurchaser = false
        @Flag(help: "Ask for the move: the ticket stays until --accept (or --cancel).") var pending = false
        @Flag(help: "Accept the transfer pending on the line: the ticket moves now.") var accept = false
        @Flag(help: "Cancel the transfer pending on the line.") var cancel = false
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            let chosen = [to != nil, toPurchaser, accept, cancel].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError("give exactly one of --to HOLDER, --to-purchaser, --accept and --cancel")
            }
            if pending, accept || cancel { throw ValidationError("--pending goes with --to or --to-purchaser") }
        }

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let view: JSON
                if accept || cancel {
                    view = try client.call(
                        accept ? "transfer.accept" : "transfer.cancel", [("order_id", .string(orderID)), ("line", .string(line))])
                } else {
                    view = try client.call(
                        "order.transfer",
                        [
                            ("order_id", .string(orderID)), ("line", .string(line)), ("to", to.map { JSON.string($0) } ?? .null),
                            ("pending", .bool(pending)),
                        ],
                        keepingNulls: true)
                }
                View.print(view, json: output.json) { View.order($0) }
            }
        }
    }

    struct Timeline: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The audit timeline of an order.")
        @Argument var orderID: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let result = try client.call("order.timeline", ["order_id": .string(orderID)])
                View.print(result, json: output.json) { result in
                    let entries = result["timeline"]?.array ?? []
                    let currency = client.currency(ofOrder: orderID)
                    return entries.isEmpty ? "(empty timeline)" : Render.objects(entries) { _ in currency }
                }
            }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel orders (with a refund unless --no-refund).")
        @Argument(help: "Order ids.") var orderIDs: [String]
        @Option(help: "Reason.") var reason: String = "cancelled"
        @Option(help: "original | offline | balance | none.") var method: String?
        @Option(help: "Note.") var note: String?
        @Flag(name: .customLong("no-refund"), help: "Cancel without refunding.") var noRefund = false
        @Flag(name: .customLong("no-restock"), help: "Do not release the tickets.") var noRestock = false
        @Option(help: "Only these lines (comma-separated; one order id).") var lines: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                if lines != nil, orderIDs.count != 1 {
                    throw ClientError("invalid_argument", "--lines names lines of one order: give exactly one order id")
                }
                let client = try connection.connect()
                var failures = 0
                let requests: [(String, [(String, JSON)])] = orderIDs.map { id in
                    var p: [(String, JSON)] = [("order_id", .string(id)), ("reason", .string(reason))]
                    if noRefund { p.append(("refund", false)) }
                    if let method { p.append(("method", .string(method))) }
                    if let note { p.append(("note", .string(note))) }
                    if noRestock { p.append(("restock", false)) }
                    if let lines { p.append(("lines", .array(lines.split(separator: ",").map { .string(String($0)) }))) }
                    return ("order.cancel", p)
                }
                let results = try client.callAll(requests)
                let currencies = output.json ? [:] : client.currencies(of: orderIDs)
                var rows: [JSON] = []
                for (id, result) in zip(orderIDs, results) {
                    switch result {
                    case .success(let refund):
                        if output.json { Console.out(refund.serialized) } else { rows.append(refund) }
                    case .failure(let error):
                        failures += 1
                        Console.err("\(id): \(error)")
                    }
                }
                if !output.json && !rows.isEmpty { Console.out(View.refunds(rows, currencies: currencies)) }
                if failures > 0 { throw ExitCode.failure }
            }
        }
    }

    struct Moderate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Invalidate an order or some of its lines (moderation).",
            discussion: """
                --outcome for the whole order (or --lines); --line LINE=OUTCOME (repeatable) gives each line its own \
                outcome, as a ban decides per ticket: the lines cancelled without money and the lines refunded are \
                two refunds made together, both or neither.
                """)
        @Argument var orderID: String
        @Option(help: "invalidate_refund | invalidate_no_refund.") var outcome: String?
        @Option(help: "Only these lines (comma-separated), with --outcome.") var lines: String?
        @Option(name: .customLong("line"), help: "LINE=invalidate_refund|invalidate_no_refund, one per line (repeatable).")
        var perLine: [String] = []
        @Option var note: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                var params: [(String, JSON)] = [("order_id", .string(orderID))]
                if let note { params.append(("note", .string(note))) }
                switch (outcome, perLine.isEmpty) {
                case (let outcome?, true):
                    params.append(("outcome", .string(outcome)))
                    if let lines { params.append(("lines", .array(lines.split(separator: ",").map { .string(String($0)) }))) }
                case (nil, false):
                    guard lines == nil else { throw ClientError("invalid_argument", "--lines goes with --outcome, not --line") }
                    var outcomes: [(String, JSON)] = []
                    for item in perLine {
                        let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                        guard parts.count == 2, !parts[0].isEmpty else {
                            throw ClientError("invalid_argument", "--line \(item): expected LINE=OUTCOME")
                        }
                        outcomes.append((parts[0], .string(parts[1])))
                    }
                    params.append(("outcomes", .object(outcomes)))
                default:
                    throw ClientError("invalid_argument", "give --outcome (with --lines if not every line) or --line LINE=OUTCOME")
                }
                let client = try connection.connect()
                let result = try client.call("order.moderate", params)
                let currency = client.currency(ofOrder: orderID)
                if let refunds = result["refunds"]?.array {
                    View.print(result, json: output.json) { _ in refunds.map { View.refund($0, currency: currency) }.joined(separator: "\n\n") }
                } else {
                    View.print(result, json: output.json) { View.refund($0, currency: currency) }
                }
            }
        }
    }
}

// MARK: - dispute, balance, inventory, bulk, stats, snapshot, ping, call

struct DisputeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispute", abstract: "Open or close a payment dispute.", subcommands: [Open.self, Close.self])

    struct Open: ParsableCommand {
        @Argument var orderID: String
        @Option var reason: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let view = try connection.connect().call(
                    "dispute.open", ["order_id": .string(orderID), "reason": reason.map(JSON.string) ?? .null])
                View.print(view, json: output.json, View.order)
            }
        }
    }

    struct Close: ParsableCommand {
        @Argument var orderID: String
        @Option(help: "won | lost | withdrawn.") var outcome: String
        @Option var note: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let view = try connection.connect().call(
                    "dispute.close",
                    ["order_id": .string(orderID), "outcome": .string(outcome), "note": note.map(JSON.string) ?? .null])
                View.print(view, json: output.json, View.order)
            }
        }
    }
}

struct Balance: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A customer's account balance, per currency.")
    @Argument var customer: String
    @Option(help: "Only this currency (ISO 4217 code).") var currency: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            var request: [(String, JSON)] = [("customer", .string(customer))]
            if let currency { request.append(("currency", .string(currency))) }
            let result = try connection.connect().call("balance.get", request)
            View.print(result, json: output.json) { result in
                // Every balance in its own currency (`balances` is currency → minor units).
                var rows: [(String, String)] = [("customer", result["customer"]?.string ?? customer)]
                for (code, value) in result["balances"]?.members ?? [] where currency == nil || code == currency {
                    rows.append((code, Money.format(value.int ?? 0, code)))
                }
                if rows.count == 1 { rows.append(("balance", "none")) }
                return Render.keyValues(rows)
            }
        }
    }
}

struct Inventory: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Tickets released back to inventory, per ticket type.")
    @Option(name: .customLong("ticket-type")) var ticketType: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let result = try connection.connect().call(
                "inventory.get", ["ticket_type": ticketType.map(JSON.string) ?? .null])
            View.print(result, json: output.json) { result in
                let rows = (result["released"]?.members ?? []).sorted { $0.0 < $1.0 }.map { [$0.0, Render.cell("", $0.1, currency: nil)] }
                return rows.isEmpty ? "(nothing released)" : Render.table(["ticket type", "released"], rows)
            }
        }
    }
}

struct BulkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bulk", abstract: "Bulk jobs (start one with cancel-event).",
        subcommands: [Status.self, BulkReport.self, Pause.self, Resume.self, Abort.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A bulk job's progress and summary.")
        @Argument var jobID: String
        @Option(help: "Currency for the amounts (default: looked up from an order of the job).") var currency: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let status = try client.call("bulk.status", ["job_id": .string(jobID)])
                View.print(status, json: output.json) { View.bulk($0, currency: currency ?? client.currency(ofOrder: View.anyOrderID($0))) }
            }
        }
    }
}

extension BulkCommand {
    /// What `bulk pause|resume|abort` take: the job, the currency to show its amounts in, where the daemon is.
    struct SteerOptions: ParsableArguments {
        @Argument var jobID: String
        @Option(help: "Currency for the amounts (default: looked up from an order of the job).") var currency: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        /// Sends one steer (`op`) and prints the job's status it answers.
        func steer(_ op: String) throws {
            let client = try connection.connect()
            let status = try client.call(op, ["job_id": .string(jobID)])
            View.print(status, json: output.json) { View.bulk($0, currency: currency ?? client.currency(ofOrder: View.anyOrderID($0))) }
        }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause a running job: it selects no new order until resumed (refunds already made settle as usual).",
            discussion: "Answers once the pause is durable and every partition has finished the chunk it was on.")
        @OptionGroup var job: SteerOptions
        func run() throws { try reporting { try job.steer("bulk.pause") } }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused job from where it stopped.")
        @OptionGroup var job: SteerOptions
        func run() throws { try reporting { try job.steer("bulk.resume") } }
    }

    struct Abort: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Abort a job for good: it selects no more orders; refunds already made stay and settle.",
            discussion: "Asks for confirmation (--yes skips it; without a terminal --yes is required).")
        @OptionGroup var job: SteerOptions
        @Flag(help: "Do not ask for confirmation.") var yes = false
        func run() throws {
            try reporting {
                if !yes {
                    guard Console.stdinIsTTY else {
                        throw ClientError("confirmation_required", "not a terminal: pass --yes to abort without a prompt")
                    }
                    Console.err("Abort \(job.jobID)? Orders it has not reached are left alone for good. [y/N] ", newline: false)
                    let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
                    guard answer == "y" || answer == "yes" else {
                        Console.err("not aborted: nothing changed")
                        throw ExitCode.failure
                    }
                }
                try job.steer("bulk.abort")
            }
        }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Engine and server counters.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let result = try connection.connect().call("stats")
            View.print(result, json: output.json) { Render.value($0) }
        }
    }
}

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a snapshot of every partition now.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let started = Date()
            let result = try connection.connect().call("snapshot")
            View.print(result, json: output.json) { _ in "snapshot written in \(Int(Date().timeIntervalSince(started) * 1000)) ms" }
        }
    }
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the daemon answers.")
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try reporting {
            let started = Date()
            let client = try connection.connect()
            let result = try client.call("ping")
            let elapsed = String(format: "%.2f", Date().timeIntervalSince(started) * 1000)
            // Daemons before 0.9.0 answered {} (no versions).
            let versions = result["version"]?.string.map { version in
                " (refundd \(version), protocol \(result["protocol_version"]?.int.map(String.init) ?? "?"))"
            } ?? ""
            Console.out("pong from \(client.connection.endpoint) in \(elapsed) ms\(versions)")
        }
    }
}

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send any op with a JSON object of parameters; prints the raw result.",
        discussion: "Example: refundctl call order.get '{\"order_id\":\"ord_1\"}'")
    @Argument(help: "The op, e.g. order.get.") var op: String
    @Argument(help: "Parameters as a JSON object.") var params: String = "{}"
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try reporting {
            let value: JSON
            do { value = try JSONParser.parse(params) } catch { throw ClientError("invalid_json", "parameters: \(error)") }
            guard let members = value.members else { throw ClientError("invalid_json", "parameters must be a JSON object") }
            let result = try connection.connect().call(op, members.filter { $0.0 != "id" && $0.0 != "op" })
            Console.out(result.pretty())
        }
    }
}

struct Attention: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The failed-refund queue: failed refunds not yet recovered.")
    @Option var limit: Int?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let client = try connection.connect()
            let result = try client.callPaged("refund.attention", [], key: "refunds", limit: limit)
            View.print(result, json: output.json) { result in
                let refunds = result["refunds"]?.array ?? []
                if refunds.isEmpty { return "(no refunds need attention)" }
                let currencies = client.currencies(of: refunds.compactMap { $0["order_id"]?.string })
                let rows = refunds.map { refund -> [String] in
                    let currency = currencies[refund["order_id"]?.string ?? ""]
                    let failed = (refund["transactions"]?.array ?? []).filter { $0["status"]?.string == "failed" }
                    let failures = failed.map { t -> String in
                        let last = t["failures"]?.array?.last
                        let code = last?["code"]?.string ?? last?.string ?? t["failure_code"]?.string ?? "failed"
                        return "\(t["tender"]?.string ?? "?"):\(code)"
                    }
                    return [
                        refund["id"]?.string ?? "-", refund["order_id"]?.string ?? "-",
                        Render.cell("amount", refund["amount"], currency: currency), refund["method"]?.string ?? "-",
                        failures.joined(separator: ","), String(failed.map { $0["attempts"]?.int ?? 0 }.max() ?? 0),
                        refund["created_at"]?.string ?? "-",
                    ]
                }
                return Render.table(["refund", "order", "amount", "method", "failed tenders", "attempts", "created"], rows)
                    + "\n\n\(refunds.count) refund(s) need attention: refundctl refund retry ID | refund recover ID --action ... --note ..."
            }
        }
    }
}

struct Receipt: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A refund's receipt (text; --json for the JSON form).")
    @Argument var refundID: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let receipt = try connection.connect().call("refund.receipt", ["refund_id": .string(refundID)])
            View.print(receipt, json: output.json) { $0["text"]?.string ?? Render.value($0, currency: $0["currency"]?.string) }
        }
    }
}
