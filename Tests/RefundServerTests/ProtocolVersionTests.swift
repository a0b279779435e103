import DaemonTestSupport
import Foundation
import Testing

/// `hello`: a connection chooses the protocol version it speaks. Version 1 is where every connection starts and
/// stays unless it asks; version 2 answers `order.get` without `include` with the compact view.
@Suite("protocol versions over a socket")
struct ProtocolVersionTests {
    static func isFull(_ view: [String: Any]) -> Bool { view["order"] != nil && view["refunds"] != nil && view["order_id"] == nil }
    static func isCompact(_ view: [String: Any]) -> Bool {
        view["order_id"] as? String != nil && view["order"] == nil && view["refunds"] == nil && view["totals"] != nil
    }

    @Test("ping names the versions; a connection speaks 1 until hello says 2, and only that connection changes")
    func helloSwitchesOneConnection() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        let other = try LineClient(port: daemon.port)
        let ping = try c.ok(#"{"id":1,"op":"ping"}"#)
        #expect(ping["protocol_version"] as? Int == 1)
        #expect(ping["protocol_versions"] as? [Int] == [1, 2])
        _ = try c.ok(#"{"id":2,"op":"order.put","order":\#(orderJSON("ord_1"))}"#)
        #expect(Self.isFull(try c.ok(#"{"id":3,"op":"order.get","order_id":"ord_1"}"#)))

        // hello without a version says which one the connection speaks, and changes nothing.
        let asked = try c.ok(#"{"id":4,"op":"hello"}"#)
        #expect(asked["protocol_version"] as? Int == 1)
        #expect(asked["protocol_versions"] as? [Int] == [1, 2])
        #expect(asked["version"] as? String != nil)

        let hello = try c.ok(#"{"id":5,"op":"hello","protocol_version":2}"#)
        #expect(hello["protocol_version"] as? Int == 2)
        let compact = try c.ok(#"{"id":6,"op":"order.get","order_id":"ord_1"}"#)
        #expect(Self.isCompact(compact), "\(compact)")
        #expect(compact["status"] as? String == "completed")
        // include still names the heavy parts.
        let withRefunds = try c.ok(#"{"id":7,"op":"order.get","order_id":"ord_1","include":["order","refunds"]}"#)
        #expect(withRefunds["order"] != nil && withRefunds["refunds"] != nil && withRefunds["order_id"] != nil)
        // Another connection still speaks 1.
        #expect(Self.isFull(try other.ok(#"{"id":1,"op":"order.get","order_id":"ord_1"}"#)))
        // And back to 1 on this one.
        _ = try c.ok(#"{"id":8,"op":"hello","protocol_version":1}"#)
        #expect(Self.isFull(try c.ok(#"{"id":9,"op":"order.get","order_id":"ord_1"}"#)))
    }

    @Test("a version the server does not speak, or a hello that is not well formed, changes nothing")
    func badHelloChangesNothing() throws {
        let daemon = try Daemon(["--partitions", "1"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(orderJSON("ord_1"))}"#)
        let refused = try c.fails(#"{"id":2,"op":"hello","protocol_version":3}"#, "invalid_field")
        let message = (refused["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("protocol_version") && message.contains("1, 2"), "\(message)")
        try c.fails(#"{"id":3,"op":"hello","protocol_version":0}"#, "invalid_field")
        try c.fails(#"{"id":4,"op":"hello","protocol_version":"2"}"#, "invalid_field")
        try c.fails(#"{"id":5,"op":"hello","protocol_version":2.5}"#, "invalid_field")
        try c.fails(#"{"id":6,"op":"hello","protocol":2}"#, "invalid_field")
        #expect(Self.isFull(try c.ok(#"{"id":7,"op":"order.get","order_id":"ord_1"}"#)))
    }

    /// Answers are matched by id: requests about different orders may be answered in any order (protocol.md).
    @Test("lines read together: those before hello are answered in the old version, those after in the new")
    func helloInsideOneRead() throws {
        let daemon = try Daemon(["--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":0,"op":"order.put","order":\#(orderJSON("ord_1"))}"#)
        let lines = [
            #"{"id":1,"op":"order.get","order_id":"ord_1"}"#,
            #"{"id":2,"op":"hello","protocol_version":2}"#,
            #"{"id":3,"op":"order.get","order_id":"ord_1"}"#,
            #"{"id":4,"op":"hello","protocol_version":1}"#,
            #"{"id":5,"op":"order.get","order_id":"ord_1"}"#,
        ]
        #expect(c.send(bytes: Array(lines.map { $0 + "\n" }.joined().utf8)))
        var results: [Int: [String: Any]] = [:]
        for _ in lines {
            let answer = try c.readObject()
            results[answer["id"] as? Int ?? -1] = answer["result"] as? [String: Any] ?? [:]
        }
        #expect(results.keys.sorted() == [1, 2, 3, 4, 5])
        #expect(Self.isFull(results[1] ?? [:]))
        #expect(results[2]?["protocol_version"] as? Int == 2)
        #expect(Self.isCompact(results[3] ?? [:]), "\(results[3] ?? [:])")
        #expect(results[4]?["protocol_version"] as? Int == 1)
        #expect(Self.isFull(results[5] ?? [:]))
    }

    @Test("before auth, hello is unauthorized like everything but auth")
    func helloNeedsAuth() throws {
        let daemon = try Daemon(["--partitions", "1", "--auth-token", "s3cret-token-for-tests"])
        let c = try LineClient(port: daemon.port)
        try c.fails(#"{"id":1,"op":"hello","protocol_version":2}"#, "unauthorized")
        _ = try c.ok(#"{"id":2,"op":"auth","token":"s3cret-token-for-tests"}"#)
        #expect(try c.ok(#"{"id":3,"op":"hello","protocol_version":2}"#)["protocol_version"] as? Int == 2)
    }
}
