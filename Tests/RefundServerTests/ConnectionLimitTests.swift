import DaemonTestSupport
import Foundation
import Testing

@testable import RefundServer

/// Issue 13 item 1: idle connections at the limit no longer lock everyone out. Idle connections are closed after
/// the idle timeout; with a token, strangers must authenticate within the auth deadline and can never hold the
/// reserve, so a client with the token always gets in.
@Suite("refundd connection limits against idle strangers")
struct ConnectionLimitTests {
    static let token = "0123456789abcdef0123456789abcdef"

    static func errorCode(_ object: [String: Any]) -> String? { (object["error"] as? [String: Any])?["code"] as? String }
    static func errorMessage(_ object: [String: Any]) -> String {
        (object["error"] as? [String: Any])?["message"] as? String ?? ""
    }

    @Test("without a token: idle connections at the limit are closed by the idle timeout; a subscriber is not idle")
    func idleConnectionsAtTheLimit() throws {
        let daemon = try Daemon(["--partitions", "1", "--max-connections", "5", "--idle-timeout", "2"])
        defer { daemon.stop() }
        let subscriber = try LineClient(port: daemon.port)
        _ = try subscriber.ok(#"{"id":"s","op":"events.subscribe","after":0}"#)
        var idle: [LineClient] = []
        for i in 0..<4 {
            idle.append(try LineClient(port: daemon.port))
            // Taken in before the next one connects (the stats answer may come after an event line: none here).
            #expect(try waitUntil { try subscriber.serverStats()["connections"] == i + 2 })
        }
        // The limit is reached: a newcomer is refused.
        let refused = try LineClient(port: daemon.port)
        let refusal = try refused.readObject()
        #expect(Self.errorCode(refusal) == "too_many_connections", "\(refusal)")
        #expect(refused.readLine() == nil)
        // Two seconds later the idle ones are told and closed (condition: each reads its line, then the end).
        for client in idle {
            let closing = try client.readObject()
            #expect(Self.errorCode(closing) == "idle_timeout", "\(closing)")
            #expect(client.readLine() == nil)
        }
        // Now there is room; the subscriber (quiet, but subscribed) is still there.
        let newcomer = try LineClient(port: daemon.port)
        _ = try newcomer.ok(#"{"id":1,"op":"ping"}"#)
        _ = try subscriber.ok(#"{"id":2,"op":"ping"}"#)
        let stats = try newcomer.serverStats()
        #expect(stats["idle_timeouts"] == 4 && stats["rejected_connections"] == 1, "\(stats)")
        #expect(daemon.log.contains("event=idle_timeout"), "\(daemon.log)")
        #expect(daemon.log.contains("event=connection_refused"), "\(daemon.log)")
    }

    @Test("with a token: strangers never hold the reserve, the token client gets in, the auth deadline closes strangers")
    func strangersCannotLockOutTheToken() throws {
        // 8 connections, 2 reserved: at most 6 unauthenticated.
        let daemon = try Daemon([
            "--partitions", "1", "--auth-token", Self.token, "--max-connections", "8", "--auth-reserve", "2",
            "--auth-timeout", "1",
        ])
        defer { daemon.stop() }
        let admin = try LineClient(port: daemon.port)
        _ = try admin.ok(#"{"id":1,"op":"auth","token":"\#(Self.token)"}"#)
        var accepted = 1
        /// Connects, and waits until the server has taken the connection in (so arrivals are in a known order).
        func connect() throws -> LineClient {
            let client = try LineClient(port: daemon.port)
            accepted += 1
            let expected = accepted
            #expect(try waitUntil { try admin.serverStats()["accepted_connections"] == expected })
            return client
        }
        // Seven strangers that send nothing: the seventh makes room by closing the first.
        var strangers: [LineClient] = []
        for _ in 0..<7 { strangers.append(try connect()) }
        let first = try strangers[0].readObject()
        #expect(Self.errorCode(first) == "too_many_connections", "\(first)")
        #expect(Self.errorMessage(first).contains("closed to make room"), "\(first)")
        #expect(strangers[0].readLine() == nil)
        // A client with the token connects (the second stranger makes room) and works.
        let client = try connect()
        _ = try client.ok(#"{"id":1,"op":"auth","token":"\#(Self.token)"}"#)
        _ = try client.ok(#"{"id":2,"op":"ping"}"#)
        #expect(Self.errorCode(try strangers[1].readObject()) == "too_many_connections")
        // One more stranger fills the last slot: 2 authenticated + 6 strangers = 8, so the next is refused.
        strangers.append(try connect())
        let late = try connect()
        let refusal = try late.readObject()
        #expect(Self.errorCode(refusal) == "too_many_connections", "\(refusal)")
        #expect(Self.errorMessage(refusal).contains("at its limit of 8"), "\(refusal)")
        // The auth deadline: every stranger left is told and closed; the authenticated connections stay.
        for stranger in strangers[2...] {
            let closing = try stranger.readObject()
            #expect(Self.errorCode(closing) == "auth_timeout", "\(closing)")
            #expect(stranger.readLine() == nil)
        }
        _ = try client.ok(#"{"id":3,"op":"ping"}"#)
        let stats = try admin.serverStats()
        #expect(stats["evicted_connections"] == 2, "\(stats)")
        #expect(stats["rejected_connections"] == 1, "\(stats)")
        #expect(stats["auth_timeouts"] == 6, "\(stats)")
        #expect(try waitUntil { try admin.serverStats()["connections"] == 2 })
        let log = daemon.log
        #expect(log.contains("event=connection_evicted") && log.contains("event=auth_timeout"), "\(log)")
    }

    @Test("the registry: unauthenticated connections are capped, the oldest makes room, authenticated ones never do")
    func registry() throws {
        var registry = ConnectionRegistry<String>(limit: 4, unauthenticatedLimit: 2)
        let markers = (0..<6).map { _ in Marker() }
        func admit(_ i: Int) -> String {
            switch registry.admit(ObjectIdentifier(markers[i]), "c\(i)", peer: "p\(i)") {
            case .full: "full"
            case .admitted(let evicted): evicted.map { "evicted \($0.peer)" } ?? "in"
            }
        }
        #expect(admit(0) == "in")
        #expect(admit(1) == "in")
        registry.authenticated(ObjectIdentifier(markers[0]))
        #expect(admit(2) == "in")  // 1 authenticated, 2 unauthenticated
        #expect(admit(3) == "evicted p1")
        #expect(registry.count == 3 && registry.unauthenticated == 2)
        registry.authenticated(ObjectIdentifier(markers[2]))
        #expect(admit(4) == "in")
        #expect(admit(5) == "full")
        registry.remove(ObjectIdentifier(markers[4]))
        #expect(registry.count == 3 && registry.unauthenticated == 1)
    }
}

private final class Marker {}
