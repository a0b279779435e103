import DaemonTestSupport
import Foundation
import Testing

/// `refundd --gateway-rate` against a provider's limit (`--gateway-provider-limit`), over the socket.
@Suite("refundd --gateway-rate against a provider's limit")
struct GatewayPacingDaemonTests {
    static func cancel(_ flags: [String]) throws -> (status: [String: Any], rateLimited: Double, calls: Double) {
        let daemon = try Daemon(["--partitions", "2", "--metrics-port", "0"] + flags)
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        let orders = (1...110).map { simpleOrderJSON("pace_\($0)", event: "evt_p") }
        _ = try c.ok(#"{"id":"put","op":"order.put_many","orders":[\#(orders.joined(separator: ","))]}"#)
        var status = try c.ok(#"{"id":1,"op":"bulk.cancel_event","events":["evt_p"],"method":"original","reason":"event_cancelled"}"#)
        let job = try #require(status["job_id"] as? String)
        for _ in 0..<600 where status["state"] as? String != "completed" {
            usleep(20_000)
            status = try c.ok(#"{"id":2,"op":"bulk.status","job_id":"\#(job)"}"#)
        }
        let metrics = samples(try httpGet(port: try #require(daemon.metricsPort), "/metrics").body)
        let calls = metrics.filter { $0.key.hasPrefix("refund_gateway_outcomes_total") }.values.reduce(0, +)
        return (status, metrics[#"refund_gateway_outcomes_total{outcome="rate_limited"}"#] ?? 0, calls)
    }

    @Test("paced under the provider's limit: no request refused; unpaced: the provider refuses and the engine resends")
    func paced() throws {
        // The simulated provider refuses beyond 60 requests/s; the daemon sends at most 55/s.
        let paced = try Self.cancel(["--gateway-rate", "55", "--gateway-provider-limit", "60"])
        #expect(paced.status["state"] as? String == "completed" && paced.status["succeeded"] as? Int == 110, "\(paced.status)")
        #expect(paced.rateLimited == 0, "the pacer kept every request inside the provider's limit")
        #expect(paced.calls == 110, "one call per refund")
        let pace = try #require(paced.status["orders_per_second"] as? Double)
        #expect(pace > 0 && pace <= 120, "\(pace)")

        // The same job unpaced: the provider refuses some, each is sent again after its retry-after, and every
        // refund still succeeds.
        let unpaced = try Self.cancel(["--gateway-provider-limit", "60"])
        #expect(unpaced.status["succeeded"] as? Int == 110, "\(unpaced.status)")
        #expect(unpaced.rateLimited > 0, "without pacing the provider refused requests")
    }
}
