import DaemonTestSupport
import Foundation
import Testing

@Suite("refundctl follows next_cursor")
struct RefundctlPagingTests {
    /// The server answers at most 1,000 items a page: `refund list` must read every page (or stop at --limit).
    @Test("refund list reads past the first 1,000 refunds, and stops at --limit")
    func listFollowsTheCursor() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let directory = temporaryDirectory()
        let importFile = directory + "/orders.jsonl"
        let lines = (1...1_005).map { simpleOrderJSON("pg_\($0)", event: "evt_pg") }
        try (lines.joined(separator: "\n") + "\n").write(toFile: importFile, atomically: true, encoding: .utf8)
        let imported = try refundctl(["import", importFile], port: daemon.port, timeout: 120)
        #expect(imported.status == 0, "\(imported.stderr)")
        let cancelled = try refundctl(["cancel-event", "evt_pg", "--yes"], port: daemon.port, timeout: 120)
        #expect(cancelled.status == 0, "\(cancelled.stderr)")

        func count(_ arguments: [String]) throws -> Int? {
            let run = try refundctl(arguments + ["--json"], port: daemon.port, timeout: 120)
            let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            return (object?["refunds"] as? [Any])?.count
        }
        #expect(try count(["refund", "list", "--event", "evt_pg"]) == 1_005)
        #expect(try count(["refund", "list", "--event", "evt_pg", "--limit", "1002"]) == 1_002)
        #expect(try count(["refund", "list", "--event", "evt_pg", "--limit", "7"]) == 7)
        daemon.stop()
    }
}
