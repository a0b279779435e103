import DaemonTestSupport
import Foundation
import Testing

@testable import RefundServer

/// Issue 13 item 4: a request's id comes back as the bytes the client sent, whatever JSON number or string it is.
@Suite("request ids are echoed byte for byte")
struct RequestIDTests {
    /// Ids whose text a parse-and-print would change (a 30-digit number became `1.2345678901234568e+29`), and
    /// strings with escapes.
    static let ids = [
        "123456789012345678901234567890", "-123456789012345678901234567890", "1.50", "-0", "0", "1E2", "1e-7",
        "9223372036854775808", "42", "-9223372036854775808", "3.14159265358979323846264338327950288",
        #""abc""#, #""caf\u00e9 \/ \"q\" \\ \n""#, #""café ☕""#, #""""#, "true", "null",
    ]

    @Test("the daemon echoes number and string ids verbatim, in answers and errors")
    func echoedByTheDaemon() throws {
        let daemon = try Daemon(["--partitions", "1"])
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        for id in Self.ids {
            for (request, ok) in [
                (#"{"op":"ping","id":\#(id)}"#, true), (#"{"id": \#(id) ,"op":"no.such.op"}"#, false),
                (#"{"id":\#(id),"op":"order.get","order_id":"missing"}"#, false),
            ] {
                #expect(c.send(request))
                let line = try #require(c.readLine())
                #expect(line.hasPrefix(#"{"id":\#(id),"ok":\#(ok)"#), "\(request) → \(line)")
            }
        }
        // Pipelined: each answer carries its own id's bytes (answers may come in any order).
        let pipelined = (0..<50).map { #"{"id":1000000000000000000000\#($0),"op":"ping"}"# }
        #expect(c.send(bytes: Array(pipelined.joined(separator: "\n").utf8) + [10]))
        var seen = Set<String>()
        for _ in pipelined {
            let line = try #require(c.readLine())
            let prefix = try #require(line.split(separator: ",").first)
            seen.insert(String(prefix.dropFirst(#"{"id":"#.count)))
        }
        #expect(seen == Set((0..<50).map { "1000000000000000000000\($0)" }))
    }

    @Test("the parser locates the top-level member's bytes, not a nested one")
    func parserLocatesTheMember() throws {
        for (text, expected) in [
            (#"{"op":"x","order":{"id":5},"id":  1.50 }"#, "1.50"),
            (#"{"id":"a\"b","x":[{"id":2}]}"#, #""a\"b""#),
            (#"{"order":{"id":5}}"#, nil),
            (#"[1,2]"#, nil),
            (#"{"\u0069d":7}"#, "7"),
        ] {
            let bytes = Array(text.utf8)
            let located = try bytes.withUnsafeBytes { raw in try JSONParser().parse(raw, locatingMember: "id").member }
            #expect(located.map { String(decoding: bytes[$0], as: UTF8.self) } == expected, "\(text)")
        }
        let outcome = RequestLineDecoding.decode(Array(#"{"id":123456789012345678901234567890,"op":"ping"}"#.utf8))
        #expect(outcome.id == .raw("123456789012345678901234567890"))
        #expect(RequestLineDecoding.decode(Array(#"{"id":true,"op":"ping"}"#.utf8)).id == .bool(true))
    }

    @Test("a raw id encoded by another encoder is the value it stands for")
    func rawThroughFoundation() throws {
        let data = try JSONEncoder().encode([WireID.raw("12"), .raw(#""x\u0041""#), .raw("null")])
        #expect(String(decoding: data, as: UTF8.self) == #"[12,"xA",null]"#)
    }
}
