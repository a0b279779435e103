import DaemonTestSupport
import Foundation
import Prometheus
import RefundCore
import RefundEngine
import RefundStorage
import Testing

@testable import refundd

/// One HTTP/1.0 exchange with the metrics endpoint: (status code, body).
func httpGet(port: Int, _ path: String) throws -> (status: Int, body: String) {
    let client = try LineClient(port: port)
    guard client.send(bytes: Array("GET \(path) HTTP/1.0\r\n\r\n".utf8)) else { throw TestFailure("send failed") }
    var lines: [String] = []
    while let line = client.readLine() { lines.append(line) }  // HTTP/1.0: the server closes after the answer
    guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
        throw TestFailure("no HTTP answer: \(lines.prefix(3))")
    }
    let blank = lines.firstIndex { $0 == "\r" || $0.isEmpty } ?? lines.count
    return (status, lines.dropFirst(blank + 1).joined(separator: "\n"))
}

/// Prometheus text as `name{labels}` → value (comments skipped).
func samples(_ text: String) -> [String: Double] {
    var values: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        values[String(line[..<space])] = value
    }
    return values
}

@Suite("refundd --metrics-port: Prometheus metrics, /healthz and /readyz, JSON logs")
struct MetricsEndpointTests {
    @Test("a scrape of a real daemon shows the names, and the values move with the work done")
    func scrapeMoves() throws {
        let daemon = try Daemon(["--metrics-port", "0", "--partitions", "2", "--log-format", "json"])
        defer { daemon.stop() }
        let port = try #require(daemon.metricsPort)
        #expect(try httpGet(port: port, "/readyz") == (200, "ready"))
        #expect(try httpGet(port: port, "/healthz") == (200, "alive"))
        #expect(try httpGet(port: port, "/nope").status == 404)

        let before = samples(try httpGet(port: port, "/metrics").body)
        let names = Set(before.keys.map { $0.split(separator: "{").first.map(String.init) ?? $0 })
        for name in [
            "refund_refunds_created_total", "refund_gateway_calls_total", "refund_wal_fsyncs_total",
            "refund_wal_fsync_duration_seconds_bucket", "refund_wal_group_commit_records_bucket",
            "refund_snapshots_total", "refund_recovery_duration_seconds", "refund_attention_queue", "refund_orders",
            "refund_bulk_jobs_running", "refund_retries_total",
        ] {
            #expect(names.contains(name), "\(name) is not exported")
        }
        #expect(before[#"refund_refunds_created_total{method="original"}"#] == 0)

        let client = try LineClient(port: daemon.port)
        _ = try client.ok(#"{"op":"order.put","order":\#(orderJSON("ord_m1"))}"#)
        _ = try client.ok(#"{"op":"refund.create","order_id":"ord_m1","method":"original","reason":"x"}"#)
        _ = try client.ok(#"{"op":"snapshot"}"#)
        _ = try client.fails(#"{"op":"order.explode"}"#, "unknown_op")
        _ = try client.fails(#"{"op":"refund.get","refund_id":"rf_9_nope"}"#, "refund_not_found")

        let after = samples(try httpGet(port: port, "/metrics").body)
        #expect(after[#"refund_refunds_created_total{method="original"}"#] == 1)
        // The card share went to the gateway and succeeded there: the refund is counted succeeded, none pending.
        #expect(after[#"refund_refunds_settled_total{method="original",status="succeeded"}"#] == 1)
        #expect(after[#"refund_refunds_pending{method="original"}"#] == 0)
        // The contract order refunds 4635: 2,850-ish to the card through the gateway, the rest to the wallet.
        #expect(after[#"refund_amount_refunded_minor_total{currency="GBP"}"#] == 4635)
        #expect(after["refund_gateway_requests_total"] == 1)
        #expect(after[#"refund_snapshots_total{result="written"}"#] ?? 0 >= 1)
        #expect(after["refund_snapshot_last_success_timestamp_seconds"] ?? 0 > 1_700_000_000)
        #expect(after["refund_orders"] == 1 && after["refund_refunds"] == 1)
        // The server: requests by op and code, their latency, connections, bytes.
        #expect(after[#"refund_server_requests_total{op="refund.create",code="ok"}"#] == 1)
        #expect(after[#"refund_server_requests_total{op="refund.get",code="refund_not_found"}"#] == 1)
        #expect(after[#"refund_server_requests_total{op="-",code="unknown_op"}"#] == 1)
        #expect(after[#"refund_server_request_duration_seconds_count{op="refund.create"}"#] == 1)
        #expect(after["refund_server_connections"] ?? 0 >= 1)
        #expect(after["refund_server_requests_in_flight"] == 0)
        #expect(after["refund_server_received_bytes_total"] ?? 0 > 500 && after["refund_server_sent_bytes_total"] ?? 0 > 500)
        let records = after.filter { $0.key.hasPrefix("refund_wal_records_total") }.values.reduce(0, +)
        let fsyncs = after.filter { $0.key.hasPrefix("refund_wal_fsyncs_total") }.values.reduce(0, +)
        #expect(records >= 2 && fsyncs >= 2, "records \(records), fsyncs \(fsyncs)")

        // --log-format json: every line of the log is one JSON object with its fields.
        let lines = daemon.log.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["ts"] is String && object?["level"] is String && object?["message"] is String, "\(line)")
        }
        #expect(lines.contains { $0.contains(#""message":"recovered""#) })
        // Each snapshot is logged once with its fields; no request is logged at info.
        #expect(lines.contains { $0.contains(#""event":"snapshot""#) && $0.contains(#""partition":"#) })
        #expect(!lines.contains { $0.contains("refund.create") })
    }

    @Test("/healthz and /readyz: recovering, ready, and fail-stopped with the reason in the body")
    func healthAndReadiness() async throws {
        let readiness = Readiness()
        let routes = MetricsRoutes(registry: PrometheusCollectorRegistry(), readiness: readiness)
        func answer(_ path: String) async -> (Int, String) {
            let answer = await routes.answer(.GET, path)
            return (Int(answer.status.code), String(decoding: answer.body, as: UTF8.self))
        }
        #expect(await answer("/readyz") == (503, "not ready: recovering the data directory\n"))
        #expect(await answer("/healthz") == (200, "alive: recovering\n"))

        let fs = SimulatedFileSystem(seed: 12)
        let engine = try await Engine.open(
            configuration: EngineConfiguration(partitions: 1),
            durability: DurabilityOptions(directory: "/data", snapshotEveryRecords: 0, snapshotEveryBytes: 0, fileSystem: fs),
            gateway: SimulatedGateway())
        readiness.ready(engine)
        #expect(await answer("/readyz") == (200, "ready\n"))
        #expect(await answer("/healthz") == (200, "alive\n"))
        #expect(await answer("/metrics").0 == 200)

        // A disk failure stops the engine: not ready, not healthy (only a restart helps), and the body says why.
        fs.failNext(.write, errno: ENOSPC)
        let order = Order(
            id: "ord_1", event: "evt_1", currency: .gbp, lines: [OrderLine(id: "l1", price: 100)],
            tenders: [Tender(id: "t1", method: .cash, amount: 100)])
        await #expect(throws: RefundError.self) { _ = try await engine.putOrder(order) }
        let ready = await answer("/readyz")
        let healthy = await answer("/healthz")
        #expect(ready.0 == 503 && ready.1.hasPrefix("not ready: stopped:") && ready.1.contains("No space left"), "\(ready)")
        #expect(healthy.0 == 503 && healthy.1.hasPrefix("stopped:"), "\(healthy)")
        #expect(await answer("/metrics").0 == 200)  // still scraped: the stopped gauge is how an alert sees it
        engine.kill()
    }
}
