import RefundServer
import ArgumentParser
import Foundation

struct RefundCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refund", abstract: "Refunds: preview, create, get, list, buyer requests, settlement, recovery.",
        subcommands: [
            Preview.self, Create.self, Get.self, List.self, Request.self, Requests.self, Approve.self, Decline.self,
            Settle.self, Retry.self, Recover.self, ReceiptCommand.self, Resend.self, AttentionCommand.self,
        ])

    /// Shows a refund result with its order's currency.
    static func show(_ refund: JSON, client: Client, json: Bool) {
        View.print(refund, json: json) { View.refund($0, currency: client.currency(ofOrder: $0["order_id"]?.string)) }
    }

    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What a refund would be, changing nothing.")
        @Argument var orderID: String
        @OptionGroup var refund: RefundFlags
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let preview = try client.call("refund.preview", [("order_id", .string(orderID))] + refund.params())
                View.print(preview, json: output.json) { Render.value($0, currency: client.currency(ofOrder: orderID)) }
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refund an order (all active lines unless --lines).")
        @Argument var orderID: String
        @OptionGroup var refund: RefundFlags
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let result = try client.call(
                    "refund.create", [("order_id", .string(orderID))] + refund.params(defaultMethod: "original"))
                RefundCommand.show(result, client: client, json: output.json)
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a refund.")
        @Argument var refundID: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                RefundCommand.show(try client.call("refund.get", ["refund_id": .string(refundID)]), client: client, json: output.json)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List refunds of an order, or of an event.")
        @Option var order: String?
        @Option var event: String?
        @Option(help: "pending | succeeded | failed.") var status: String?
        @Option var limit: Int?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let result = try client.callPaged(
                    "refund.list",
                    [
                        ("order_id", order.map(JSON.string) ?? .null), ("event", event.map(JSON.string) ?? .null),
                        ("status", status.map(JSON.string) ?? .null),
                    ], key: "refunds", limit: limit)
                View.print(result, json: output.json) { result in
                    let refunds = result["refunds"]?.array ?? []
                    return View.refunds(refunds, currencies: client.currencies(of: refunds.compactMap { $0["order_id"]?.string }))
                }
            }
        }
    }

    struct Request: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A buyer's refund request (self-service).")
        @Argument var orderID: String
        @Option var reason: String
        @Option(help: "Lines, comma-separated (default: all).") var lines: String?
        @Option(help: "The buyer's id (the actor, with the self_service permission).") var customer: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let actor = customer.map {
                    JSON.object([("id", .string($0)), ("permissions", .array(["self_service"]))])
                }
                let client = try connection.connect(actor: actor)
                let request = try client.call(
                    "refund.request",
                    [
                        "order_id": .string(orderID), "reason": .string(reason),
                        "lines": lines.map { JSON.array($0.split(separator: ",").map { .string(String($0)) }) } ?? .null,
                    ])
                View.print(request, json: output.json) { Render.value($0) }
            }
        }
    }

    struct Requests: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open buyer requests.")
        @Option var limit: Int?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let result = try connection.connect().callPaged("refund.requests", [], key: "requests", limit: limit)
                View.print(result, json: output.json) { result in
                    let items = result["requests"]?.array ?? []
                    return items.isEmpty
                        ? "(no open requests)"
                        : Render.objects(items, columns: ["id", "order_id", "lines", "reason", "requested_by", "created_at"])
                }
            }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a buyer request (refund options as for create).")
        @Argument var requestID: String
        @Option(name: .customLong("admin-note")) var adminNote: String?
        @OptionGroup var refund: RefundFlags
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                var params: [(String, JSON)] = [("request_id", .string(requestID))] + (try refund.params())
                if let adminNote { params.append(("admin_note", .string(adminNote))) }
                RefundCommand.show(try client.call("refund.approve", params), client: client, json: output.json)
            }
        }
    }

    struct Decline: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decline a buyer request.")
        @Argument var requestID: String
        @Option var note: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let result = try connection.connect().call(
                    "refund.decline", ["request_id": .string(requestID), "note": note.map(JSON.string) ?? .null])
                View.print(result, json: output.json) { Render.value($0) }
            }
        }
    }

    struct Settle: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record the gateway's outcome for one tender of a refund.",
            usage: """
                refundctl refund settle <refund-id> --tender <tender> (--succeeded | --failed) [--attempt <n>] \
                [--reference <ref>] [--failure-code <code>] [--retryable]
                """)
        @Argument var refundID: String
        @Option var tender: String
        @Option(help: "The attempt the answer is for (the idempotency key's last number); without it, the current one.")
        var attempt: Int?
        @Flag(help: "Whether the gateway refund succeeded or failed.") var outcome: Outcome
        @Option var reference: String?
        @Option(name: .customLong("failure-code")) var failureCode: String?
        @Flag var retryable = false
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        enum Outcome: String, EnumerableFlag {
            case succeeded, failed
        }

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let result = try client.call(
                    "refund.settle",
                    [
                        "refund_id": .string(refundID), "tender": .string(tender), "succeeded": .bool(outcome == .succeeded),
                        "reference": reference.map(JSON.string) ?? .null, "failure_code": failureCode.map(JSON.string) ?? .null,
                        "retryable": retryable ? true : .null, "attempt": attempt.map { .int(Int64($0)) } ?? .null,
                    ])
                RefundCommand.show(result, client: client, json: output.json)
            }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a failed refund to the gateway again.")
        @Argument var refundID: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                RefundCommand.show(try client.call("refund.retry", ["refund_id": .string(refundID)]), client: client, json: output.json)
            }
        }
    }

    struct Recover: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record how a failed refund was resolved.")
        @Argument var refundID: String
        @Option(help: "contacted_buyer | refunded_externally | written_off | other.") var action: String
        @Option var note: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                let result = try client.call(
                    "refund.recover", ["refund_id": .string(refundID), "action": .string(action), "note": .string(note)])
                RefundCommand.show(result, client: client, json: output.json)
            }
        }
    }

    struct ReceiptCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "receipt", abstract: "A refund's receipt.")
        @Argument var refundID: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try Receipt.parse([refundID] + connectionArguments(connection) + (output.json ? ["--json"] : [])).run()
        }
    }

    struct Resend: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue the refund confirmation again.")
        @Argument var refundID: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let client = try connection.connect()
                RefundCommand.show(try client.call("refund.resend", ["refund_id": .string(refundID)]), client: client, json: output.json)
            }
        }
    }

    struct AttentionCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "attention", abstract: "The failed-refund queue.")
        @Option var limit: Int?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            var arguments = connectionArguments(connection) + (output.json ? ["--json"] : [])
            if let limit { arguments += ["--limit", String(limit)] }
            try Attention.parse(arguments).run()
        }
    }
}

/// The connection flags as arguments again (to run a sibling command).
func connectionArguments(_ c: ConnectionOptions) -> [String] {
    var out: [String] = []
    if let host = c.host { out += ["--host", host] }
    if let port = c.port { out += ["--port", String(port)] }
    if let path = c.unixSocket { out += ["--unix-socket", path] }
    if let token = c.token { out += ["--token", token] }
    if let actor = c.actor { out += ["--actor", actor] }
    out += ["--timeout", String(c.timeout)]
    return out
}
