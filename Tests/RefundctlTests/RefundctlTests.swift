import DaemonTestSupport
import Foundation
import RefundServer
import Testing

@testable import refundctl

@Suite("refundctl against a real refundd")
struct RefundctlTests {
    @Test("order put, refund create, refund get --json, import with a bad line, cancel-event --yes, wal verify")
    func session() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let port = daemon.port
        let directory = temporaryDirectory()
        let orderFile = directory + "/ord_1.json"
        try orderJSON("ord_1").write(toFile: orderFile, atomically: true, encoding: .utf8)

        let put = try refundctl(["order", "put", orderFile], port: port)
        #expect(put.status == 0, "\(put.stderr)")
        #expect(put.stdout.contains("ord_1"))
        #expect(put.stdout.contains("48.84 GBP"))  // totals.gross with the currency's decimals

        let create = try refundctl(["refund", "create", "ord_1", "--fee", "500", "--reason", "event_cancelled"], port: port)
        #expect(create.status == 0, "\(create.stderr)")
        #expect(create.stdout.contains("41.35 GBP"))
        #expect(create.stdout.contains("rf_1_ord_1"))

        let get = try refundctl(["refund", "get", "rf_1_ord_1", "--json"], port: port)
        #expect(get.status == 0, "\(get.stderr)")
        let refund = try #require(try JSONSerialization.jsonObject(with: Data(get.stdout.utf8)) as? [String: Any])
        #expect(refund["amount"] as? Int == 4135)
        #expect(refund["fee_retained"] as? Int == 500)
        #expect(refund["status"] as? String == "succeeded")

        // An error: `error <code>: <message>` on stderr, exit status 1.
        let missing = try refundctl(["order", "get", "nope"], port: port)
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("error order_not_found:"), "\(missing.stderr)")

        // Import: 6 orders, one line that is not JSON (line 4), one unbalanced order (line 6), a blank line.
        var lines = (1...6).map { simpleOrderJSON("imp_\($0)", event: "evt_9") }
        lines.insert("{\"id\":\"broken\",", at: 3)
        lines.insert(
            #"{"id":"unbalanced","event":"evt_9","currency":"GBP","lines":[{"id":"a","ticket_type":"tt_a","price":2000}],"tenders":[{"id":"t1","method":"card","amount":1}]}"#,
            at: 5)
        lines.insert("", at: 7)
        let importFile = directory + "/orders.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: importFile, atomically: true, encoding: .utf8)
        let imported = try refundctl(["import", importFile], port: port)
        #expect(imported.status == 1, "rejected lines give exit status 1")
        #expect(imported.stdout.contains("imported 6, rejected 2 of 8 lines"), "\(imported.stdout)\(imported.stderr)")
        let rejectedLines = imported.stdout.split(separator: "\n").compactMap { line -> (Int, String)? in
            let cells = line.split(separator: " ", omittingEmptySubsequences: true)
            guard cells.count >= 2, let number = Int(cells[0]) else { return nil }
            return (number, String(cells[1]))
        }
        #expect(rejectedLines.map(\.0) == [4, 6])
        #expect(rejectedLines.map(\.1) == ["invalid_json", "order_unbalanced"])

        // Without a terminal, cancel-event refuses to run without --yes (and changes nothing).
        let refused = try refundctl(["cancel-event", "evt_9", "--fee", "200"], port: port)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("error confirmation_required"))

        let cancelled = try refundctl(["cancel-event", "evt_9", "--fee", "200", "--yes"], port: port)
        #expect(cancelled.status == 0, "\(cancelled.stderr)")
        #expect(cancelled.stdout.contains("Dry run"))
        #expect(cancelled.stdout.contains("refunded      228.00 GBP"), "\(cancelled.stdout)")  // 6 × (40.00 − 2.00)
        #expect(cancelled.stdout.contains("fee retained  12.00 GBP"), "\(cancelled.stdout)")
        let list = try refundctl(["refund", "list", "--event", "evt_9", "--json"], port: port)
        let refunds = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])
        #expect((refunds["refunds"] as? [Any])?.count == 6)

        let receipt = try refundctl(["receipt", "rf_1_ord_1"], port: port)
        #expect(receipt.stdout.contains("Total refunded 41.35 GBP"))
        let attention = try refundctl(["attention"], port: port)
        #expect(attention.status == 0)
        #expect(attention.stdout.contains("no refunds need attention"))

        #expect(daemon.stop() == 0)
        let verify = try refundctl(["wal", "verify", "--data", daemon.dataDir])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("ok: no problems"))
        #expect(verify.stdout.contains("p0"))
        let dump = try refundctl(["wal", "dump", "--data", daemon.dataDir])
        #expect(dump.stdout.contains("\"refund_created\""))
    }

    @Test("import: batches over several connections; a field error names its line; a re-run imports nothing twice")
    func importBatches() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let directory = temporaryDirectory()
        var lines = (1...23).map { simpleOrderJSON("bat_\($0)", event: "evt_b") }
        // Line 8: a misspelt field (the server refuses its whole batch; the import names the line).
        lines[7] = lines[7].replacingOccurrences(of: "\"price\":2000}", with: "\"price\":2000,\"prcie\":1}")
        let file = directory + "/batches.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let first = try refundctl(["import", file, "--batch", "5", "--connections", "3", "--json"], port: daemon.port)
        #expect(first.status == 1)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        #expect(result["imported"] as? Int == 22 && result["rejected"] as? Int == 1, "\(first.stdout)\(first.stderr)")
        let rejection = (result["rejections"] as? [[String: Any]])?.first
        #expect(rejection?["line"] as? Int == 8 && rejection?["code"] as? String == "invalid_field")
        #expect((rejection?["message"] as? String)?.contains("prcie") == true)
        // Refund one order, then run the same import again: everything is accepted, nothing is stored twice.
        _ = try refundctl(["refund", "create", "bat_3", "--method", "offline", "--reason", "x"], port: daemon.port)
        let again = try refundctl(["import", file, "--batch", "7", "--connections", "2"], port: daemon.port)
        #expect(again.stdout.contains("imported 22, rejected 1 of 23 lines"), "\(again.stdout)\(again.stderr)")
        let list = try refundctl(["refund", "list", "--event", "evt_b", "--json"], port: daemon.port)
        let refunds = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])
        #expect((refunds["refunds"] as? [Any])?.count == 1)
        let stats = try refundctl(["stats", "--json"], port: daemon.port)
        let engine = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect(engine["orders"] as? Int == 22, "\(stats.stdout)")
        // Finding them: `orders` follows next_cursor, prints money in the currency, stops at --limit.
        let table = try refundctl(["orders", "--event", "evt_b", "--status", "refunded"], port: daemon.port)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("bat_3") && table.stdout.contains("40.00 GBP"), "\(table.stdout)")
        #expect(table.stdout.contains("1 order\n") || table.stdout.hasSuffix("1 order"), "\(table.stdout)")
        let limited = try refundctl(["orders", "--event", "evt_b", "--limit", "5", "--json"], port: daemon.port)
        let page = try #require(try JSONSerialization.jsonObject(with: Data(limited.stdout.utf8)) as? [String: Any])
        #expect((page["orders"] as? [[String: Any]])?.count == 5)
        #expect(daemon.stop() == 0)
    }

    @Test("balance prints money in its currency; settle's usage shows its outcome flags as alternatives")
    func balanceAndSettleUsage() throws {
        let daemon = try Daemon(["--partitions", "1"])
        let directory = temporaryDirectory()
        let file = directory + "/wallet.json"
        try #"{"id":"ord_w","event":"evt_1","customer":"cus_w","currency":"GBP","lines":[{"id":"l1","kind":"wallet_top_up","price":1000},{"id":"l2","ticket_type":"tt","price":252}],"tenders":[{"id":"t1","method":"card","amount":1252}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["order", "put", file], port: daemon.port).status == 0)
        #expect(try refundctl(["refund", "create", "ord_w", "--lines", "l2", "--method", "balance", "--reason", "x"], port: daemon.port).status == 0)
        let balance = try refundctl(["balance", "cus_w"], port: daemon.port)
        #expect(balance.stdout.contains("GBP") && balance.stdout.contains("12.52 GBP"), "\(balance.stdout)")
        #expect(!balance.stdout.contains("1252"), "\(balance.stdout)")
        let usage = try refundctl(["refund", "settle", "--help"])
        #expect(usage.stdout.contains("(--succeeded | --failed)"), "\(usage.stdout)")
        #expect(daemon.stop() == 0)
    }

    @Test("wal verify reports a damaged snapshot and exits 1")
    func walVerifyFindsDamage() throws {
        let daemon = try Daemon(["--partitions", "1"])
        let directory = temporaryDirectory()
        let file = directory + "/o.jsonl"
        try ((1...20).map { simpleOrderJSON("o_\($0)", event: "evt_w") }.joined(separator: "\n")).write(
            toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["import", file], port: daemon.port).status == 0)
        #expect(daemon.stop() == 0)  // a clean shutdown writes a snapshot
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: daemon.dataDir + "/p0").filter { $0.hasSuffix(".snap") }
        let snapshot = daemon.dataDir + "/p0/" + (try #require(snapshots.sorted().last))
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: snapshot)))
        try #require(bytes.count > 64)
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: snapshot))
        let verify = try refundctl(["wal", "verify", "--data", daemon.dataDir])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("problem p0: snapshot"), "\(verify.stdout)")
        #expect(verify.stdout.contains("FAILED"))
    }

    @Test("bench: a short loopback run reports throughput and percentiles")
    func bench() throws {
        let daemon = try Daemon(["--partitions", "2", "--fsync", "never"])
        let histogram = temporaryDirectory() + "/bench.hgrm"
        let run = try refundctl(
            [
                "bench", "--connections", "2", "--depth", "4", "--duration", "1", "--orders", "200", "--mix",
                "put=1,create=1,get=2,bulk=0", "--json", "--histogram", histogram,
            ],
            port: daemon.port)
        #expect(run.status == 0, "\(run.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect((result["requests"] as? Int ?? 0) > 0)
        // The histogram file: HdrHistogram's percentile text, every measured request in it.
        let hgrm = try String(contentsOfFile: histogram, encoding: .utf8)
        #expect(hgrm.contains("Value") && hgrm.contains("Percentile") && hgrm.contains("#[Mean"), "\(hgrm.prefix(300))")
        #expect(hgrm.contains("Total count    = ") && hgrm.contains("\(result["requests"] as? Int ?? -1)]"), "\(hgrm.suffix(300))")
        #expect((result["ops"] as? [String: Any])?["refund.create"] != nil)
        #expect((result["errors"] as? [String: Any])?.isEmpty == true, "\(run.stdout)")
        let refused = try refundctl(["bench", "--host", "192.0.2.1", "--duration", "1"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("loopback"))
    }

    @Test("the JSON parser: strict, order-preserving, escapes and numbers")
    func parser() throws {
        let value = try JSONParser.parse(#" {"b":1,"a":[true,null,-2.5e1,"x\"\u00e9\ud83d\ude00"],"c":{}} "#)
        #expect(value.members?.map(\.key) == ["b", "a", "c"])
        #expect(value["a"]?.array?[3].string == "x\"é😀")
        #expect(value["a"]?.array?[2] == .double(-25))
        #expect(value["b"] == .int(1))
        #expect(try JSONParser.parse("9223372036854775807") == .int(Int64.max))
        for bad in ["{", "[1,]", "01", "\"\\ud800\"", "{\"a\" 1}", "tru", "1 2", "\"\u{01}\"", "{'a':1}", ""] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONParser.parse(bad) }
        }
        let deep = String(repeating: "[", count: 501) + String(repeating: "]", count: 501)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let roundTrip = JSON.object([("s", .string("a\n\"b\u{1}")), ("n", .int(-3))])
        #expect(try JSONParser.parse(roundTrip.serialized) == roundTrip)
        // The daemon's parser: a repeated key is refused here as there.
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#"{"a":1,"a":2}"#) }
    }
}

@Suite("refundctl bulk report")
struct BulkReportTests {
    @Test("bulk.results over the socket and bulk report as CSV and JSON lines")
    func report() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let directory = temporaryDirectory()
        var lines = (1...9).map { simpleOrderJSON("rep_\($0)", event: "evt_r") }
        lines[3] = lines[3].replacingOccurrences(of: "\"currency\"", with: "\"frozen\":true,\"currency\"")
        let file = directory + "/orders.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["import", file], port: daemon.port).status == 0)
        let cancel = try refundctl(["cancel-event", "evt_r", "--fee", "100", "--yes", "--json"], port: daemon.port)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let status = try #require(try JSONSerialization.jsonObject(with: Data(cancel.stdout.utf8)) as? [String: Any])
        let job = try #require(status["job_id"] as? String)

        let csv = try refundctl(["bulk", "report", job], port: daemon.port)
        #expect(csv.status == 0, "\(csv.stderr)")
        let rows = csv.stdout.split(separator: "\n").map(String.init)
        #expect(rows.first == "order_id,status,refund_id,amount,fee_retained,currency,gateway_refs,reason")
        #expect(rows.count == 10, "\(csv.stdout)")
        #expect(rows.contains("rep_4,skipped,,,,GBP,,order_frozen"), "\(csv.stdout)")
        #expect(rows.contains { $0.hasPrefix("rep_1,succeeded,rf_1_rep_1,39.00,1.00,GBP,") }, "\(csv.stdout)")

        let output = directory + "/skipped.jsonl"
        let jsonl = try refundctl(["bulk", "report", job, "--format", "jsonl", "--status", "skipped", "--output", output], port: daemon.port)
        #expect(jsonl.status == 0, "\(jsonl.stderr)")
        let written = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(written.count == 1)
        let row = try #require(try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: Any])
        #expect(row["order_id"] as? String == "rep_4" && row["reason"] as? String == "order_frozen")
        #expect(daemon.stop() == 0)
    }
}

@Suite("refundctl bulk pause, resume and abort")
struct BulkSteeringTests {
    static func json(_ run: Run) throws -> [String: Any] {
        #expect(run.status == 0, "\(run.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
    }

    @Test("a paced job paused, kept paused across a restart, resumed, and another aborted")
    func steer() throws {
        // 40 gateway requests a second: 160 orders take about 4 s, time enough to steer.
        let flags = ["--partitions", "2", "--gateway-rate", "40"]
        var daemon = try Daemon(flags)
        let directory = temporaryDirectory()
        let lines = (1...160).map { simpleOrderJSON("st_\($0)", event: "evt_s") } + (1...160).map { simpleOrderJSON("ab_\($0)", event: "evt_a") }
        let file = directory + "/orders.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["import", file], port: daemon.port).status == 0)

        let started = try Self.json(
            refundctl(["call", "bulk.cancel_event", #"{"events":["evt_s"],"method":"original","reason":"event_cancelled"}"#], port: daemon.port))
        let job = try #require(started["job_id"] as? String)
        usleep(600_000)
        let paused = try Self.json(refundctl(["bulk", "pause", job, "--json"], port: daemon.port))
        #expect(paused["state"] as? String == "paused")
        let processed = try #require(paused["processed"] as? Int)
        #expect(processed > 0 && processed < 160, "\(paused)")
        let table = try refundctl(["bulk", "status", job], port: daemon.port)
        #expect(table.stdout.contains("paused"), "\(table.stdout)")
        #expect(try refundctl(["bulk", "pause", job], port: daemon.port).stderr.contains("invalid_state"))

        // A restart keeps the job paused: nothing more is refunded until it is resumed.
        #expect(daemon.stop() == 0)
        daemon = try Daemon(dataDir: daemon.dataDir, flags)
        usleep(500_000)
        let restored = try Self.json(refundctl(["bulk", "status", job, "--json"], port: daemon.port))
        #expect(restored["state"] as? String == "paused" && restored["processed"] as? Int == processed, "\(restored)")
        let resumed = try Self.json(refundctl(["bulk", "resume", job, "--json"], port: daemon.port))
        #expect(resumed["state"] as? String == "running")
        var status = resumed
        for _ in 0..<300 where status["state"] as? String != "completed" {
            usleep(50_000)
            status = try Self.json(refundctl(["bulk", "status", job, "--json"], port: daemon.port))
        }
        #expect(status["state"] as? String == "completed" && status["succeeded"] as? Int == 160, "\(status)")

        // Abort: without a terminal it needs --yes; with it, the job stops for good.
        let second = try Self.json(
            refundctl(["call", "bulk.cancel_event", #"{"events":["evt_a"],"method":"original","reason":"event_cancelled"}"#], port: daemon.port))
        let other = try #require(second["job_id"] as? String)
        usleep(600_000)
        let refused = try refundctl(["bulk", "abort", other], port: daemon.port)
        #expect(refused.status != 0 && refused.stderr.contains("confirmation_required"), "\(refused.stderr)")
        let aborted = try Self.json(refundctl(["bulk", "abort", other, "--yes", "--json"], port: daemon.port))
        #expect(aborted["state"] as? String == "aborted", "\(aborted)")
        let stopped = try #require(aborted["processed"] as? Int)
        #expect(stopped > 0 && stopped < 160)
        usleep(300_000)
        let list = try Self.json(refundctl(["call", "refund.list", #"{"event":"evt_a","limit":1000}"#], port: daemon.port))
        #expect((list["refunds"] as? [Any])?.count == stopped, "no refund after the abort")
        #expect(daemon.stop() == 0)
    }
}

@Suite("refundctl order moderate")
struct ModerateCommandTests {
    @Test("an outcome per line: one cancelled without money, one refunded, together")
    func perLine() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let file = temporaryDirectory() + "/order.json"
        try simpleOrderJSON("ord_ban", event: "evt_m").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["order", "put", file], port: daemon.port).status == 0)
        let bad = try refundctl(["order", "moderate", "ord_ban", "--line", "a"], port: daemon.port)
        #expect(bad.status != 0 && bad.stderr.contains("expected LINE=OUTCOME"), "\(bad.stderr)")
        let both = try refundctl(["order", "moderate", "ord_ban", "--outcome", "invalidate_refund", "--line", "a=invalidate_refund"], port: daemon.port)
        #expect(both.status != 0 && both.stderr.contains("invalid_argument"), "\(both.stderr)")
        let run = try refundctl(
            ["order", "moderate", "ord_ban", "--line", "a=invalidate_refund", "--line", "b=invalidate_no_refund", "--note", "ban", "--json"],
            port: daemon.port)
        #expect(run.status == 0, "\(run.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let refunds = try #require(result["refunds"] as? [[String: Any]])
        #expect(refunds.map { $0["method"] as? String } == ["none", "original"])
        let table = try refundctl(["order", "get", "ord_ban"], port: daemon.port)
        #expect(table.status == 0 && table.stdout.contains("refunded"), "\(table.stdout)")

        // Per-ticket cancellation, and the timeline that shows it with its money and note.
        try simpleOrderJSON("ord_c", event: "evt_m").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["order", "put", file], port: daemon.port).status == 0)
        let two = try refundctl(["order", "cancel", "ord_c", "ord_ban", "--lines", "a", "--reason", "x"], port: daemon.port)
        #expect(two.status != 0 && two.stderr.contains("exactly one order id"), "\(two.stderr)")
        let cancelled = try refundctl(
            ["order", "cancel", "ord_c", "--lines", "a", "--reason", "customer_request", "--note", "cannot attend"], port: daemon.port)
        #expect(cancelled.status == 0 && cancelled.stdout.contains("20.00 GBP"), "\(cancelled.stdout)\(cancelled.stderr)")
        let timeline = try refundctl(["order", "timeline", "ord_c"], port: daemon.port)
        let created = timeline.stdout.split(separator: "\n").first { $0.hasPrefix("refund.created") }.map(String.init) ?? ""
        #expect(created.contains("20.00 GBP") && created.contains("original") && created.contains("cannot attend"), "\(timeline.stdout)")
        #expect(daemon.stop() == 0)
    }
}

@Suite("refundctl event put and get")
struct EventSettingsCommandTests {
    @Test("an event's own self-service cutoff: set, shown, applied, kept across a restart")
    func eventCutoff() throws {
        var daemon = try Daemon(["--partitions", "2"])
        let directory = temporaryDirectory()
        // The event starts in ten days: open under the daemon's 24 h cutoff, closed under a year's.
        let formatter = ISO8601DateFormatter()
        let starts = formatter.string(from: Date().addingTimeInterval(10 * 86_400))
        let order = orderJSON("ord_e", event: "evt_e").replacingOccurrences(of: "2030-12-01T19:00:00Z", with: starts)
        let file = directory + "/order.json"
        try order.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["order", "put", file], port: daemon.port).status == 0)

        let missing = try refundctl(["event", "get", "evt_e"], port: daemon.port)
        #expect(missing.status != 0 && missing.stderr.contains("event_not_found"), "\(missing.stderr)")
        let bad = try refundctl(["event", "put", "evt_e", "--self-service-cutoff-hours", "9000"], port: daemon.port)
        #expect(bad.status != 0 && bad.stderr.contains("invalid_field"), "\(bad.stderr)")
        let put = try refundctl(["event", "put", "evt_e", "--self-service-cutoff-hours", "8760"], port: daemon.port)
        #expect(put.status == 0 && put.stdout.contains("8760 h before the event starts"), "\(put.stdout)\(put.stderr)")
        #expect(put.stdout.contains("members-only") && put.stdout.contains("no"), "\(put.stdout)")
        let members = try refundctl(
            ["event", "put", "evt_e", "--self-service-cutoff-hours", "8760", "--members-only", "true"], port: daemon.port)
        #expect(members.status == 0 && members.stdout.contains("yes: a ticket does not go back"), "\(members.stdout)\(members.stderr)")

        let selfService = #"{"order_id":"ord_e","lines":["l1"],"method":"balance","reason":"customer_request","self_service":true,"actor":{"id":"cus_9","permissions":["self_service"]}}"#
        let closed = try refundctl(["call", "refund.create", selfService], port: daemon.port)
        #expect(closed.status != 0 && closed.stderr.contains("self_service_closed"), "\(closed.stderr)")
        #expect(closed.stderr.contains("event evt_e's own cutoff"), "\(closed.stderr)")

        #expect(daemon.stop() == 0)
        daemon = try Daemon(dataDir: daemon.dataDir, ["--partitions", "2"])
        let kept = try refundctl(["event", "get", "evt_e", "--json"], port: daemon.port)
        let settings = try #require(try JSONSerialization.jsonObject(with: Data(kept.stdout.utf8)) as? [String: Any])
        #expect(settings["event"] as? String == "evt_e" && settings["self_service_cutoff_hours"] as? Int == 8760, "\(kept.stdout)")
        // Back to the daemon's cutoff: the refund is open again.
        #expect(try refundctl(["event", "put", "evt_e"], port: daemon.port).status == 0)
        let open = try refundctl(["call", "refund.create", selfService], port: daemon.port)
        #expect(open.status == 0, "\(open.stderr)")
        #expect(daemon.stop() == 0)
    }
}

@Suite("refundctl order update")
struct OrderUpdateCommandTests {
    @Test("a ticket transferred back after a refund is refunded; bad arguments name themselves")
    func transferredBack() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let file = temporaryDirectory() + "/order.json"
        let order = simpleOrderJSON("ord_u", event: "evt_u").replacingOccurrences(
            of: #""price":2000}]"#, with: #""price":2000,"transferred":true}]"#)
        try order.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["order", "put", file], port: daemon.port).status == 0)
        #expect(try refundctl(["refund", "create", "ord_u", "--lines", "a", "--reason", "x"], port: daemon.port).status == 0)
        let blocked = try refundctl(["refund", "create", "ord_u", "--lines", "b", "--reason", "x"], port: daemon.port)
        #expect(blocked.status != 0 && blocked.stderr.contains("transferred_after_checkout"), "\(blocked.stderr)")
        let bad = try refundctl(["order", "update", "ord_u", "--transferred", "b=maybe"], port: daemon.port)
        #expect(bad.status != 0 && bad.stderr.contains("expected LINE=true or LINE=false"), "\(bad.stderr)")
        let updated = try refundctl(["order", "update", "ord_u", "--transferred", "b=false", "--frozen", "false"], port: daemon.port)
        #expect(updated.status == 0 && updated.stdout.contains("partially_refunded"), "\(updated.stdout)\(updated.stderr)")
        let refunded = try refundctl(["refund", "create", "ord_u", "--lines", "b", "--reason", "x"], port: daemon.port)
        #expect(refunded.status == 0, "\(refunded.stderr)")
        let timeline = try refundctl(["order", "timeline", "ord_u"], port: daemon.port)
        #expect(timeline.stdout.contains("order.updated") && timeline.stdout.contains("b.transferred=false"), "\(timeline.stdout)")
        #expect(daemon.stop() == 0)
    }
}

@Suite("refundctl order transfer")
struct OrderTransferCommandTests {
    @Test("a ticket moved away is not refundable, moved back it is; the order shows its holders")
    func transferAwayAndBack() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let file = temporaryDirectory() + "/order.json"
        try simpleOrderJSON("ord_t", event: "evt_t").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try refundctl(["order", "put", file], port: daemon.port).status == 0)
        let bad = try refundctl(["order", "transfer", "ord_t", "--line", "a"], port: daemon.port)
        #expect(bad.status != 0 && bad.stderr.contains("--to-purchaser"), "\(bad.stderr)")
        let away = try refundctl(["order", "transfer", "ord_t", "--line", "a", "--to", "att_7"], port: daemon.port)
        #expect(away.status == 0 && away.stdout.contains("transferred") && away.stdout.contains("att_7"), "\(away.stdout)\(away.stderr)")
        let blocked = try refundctl(["refund", "create", "ord_t", "--lines", "a", "--reason", "x"], port: daemon.port)
        #expect(blocked.status != 0 && blocked.stderr.contains("transferred_after_checkout"), "\(blocked.stderr)")
        let back = try refundctl(["order", "transfer", "ord_t", "--line", "a", "--to-purchaser"], port: daemon.port)
        #expect(back.status == 0 && back.stdout.contains("purchaser"), "\(back.stdout)\(back.stderr)")
        #expect(try refundctl(["refund", "create", "ord_t", "--lines", "a", "--reason", "x"], port: daemon.port).status == 0)
        let timeline = try refundctl(["order", "timeline", "ord_t"], port: daemon.port)
        #expect(timeline.stdout.contains("ticket.transferred") && timeline.stdout.contains("att_7 → purchaser"), "\(timeline.stdout)")
        // A pending transfer of the other ticket, accepted.
        let asked = try refundctl(["order", "transfer", "ord_t", "--line", "b", "--to", "att_8", "--pending"], port: daemon.port)
        #expect(asked.status == 0, "\(asked.stderr)")
        let both = try refundctl(["order", "transfer", "ord_t", "--line", "b", "--accept", "--cancel"], port: daemon.port)
        #expect(both.status != 0)
        let accepted = try refundctl(["order", "transfer", "ord_t", "--line", "b", "--accept"], port: daemon.port)
        #expect(accepted.status == 0 && accepted.stdout.contains("att_8"), "\(accepted.stdout)\(accepted.stderr)")
        #expect(daemon.stop() == 0)
    }
}
