import DaemonTestSupport
import Foundation
import Testing

import NIOCore

@testable import RefundServer

/// Issue 13 item 3: no open door. Empty and short tokens are refused at start; wrong tokens are compared in
/// constant time, logged, answered late and end the connection after a few; nothing but `auth` is answered before
/// it.
@Suite("refundd auth under guessing")
struct AuthHardeningTests {
    static let token = "0123456789abcdef0123456789abcdef"

    @Test("an empty or short token is refused at start, with a clear error and a non-zero exit")
    func weakTokensRefused() throws {
        for (arguments, environment, expected) in [
            (["--host", "0.0.0.0", "--auth-token", ""], [:], "the auth token is empty"),
            (["--auth-token", ""], [:], "the auth token is empty"),
            (["--auth-token", "s3cret"], [:], "the auth token is 6 bytes; it must be at least 16"),
            (["--auth-token", "0123456789abcde"], [:], "must be at least 16"),
            ([], ["REFUNDD_AUTH_TOKEN": "short"], "must be at least 16"),
            ([], ["REFUNDD_AUTH_TOKEN": ""], "REFUNDD_AUTH_TOKEN is set but empty"),
            (["--host", "0.0.0.0"], ["REFUNDD_AUTH_TOKEN": ""], "REFUNDD_AUTH_TOKEN is set but empty"),
            (["--host", "0.0.0.0"], [:], "requires an auth token"),
        ] as [([String], [String: String], String)] {
            let run = try runRefunddToExit(arguments, environment: environment)
            #expect(run.status != nil && run.status != 0, "\(arguments) \(environment): \(run)")
            #expect(run.stderr.contains(expected), "\(arguments) \(environment): \(run.stderr)")
            #expect(!run.stdout.contains("listening on"), "\(arguments): \(run.stdout)")
        }
        // A token of 16 bytes is enough (the daemon starts and serves it).
        let daemon = try Daemon(["--partitions", "1", "--auth-token", "0123456789abcdef"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"auth","token":"0123456789abcdef"}"#)
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("a wrong token is answered late, logged with the peer, counted; the third closes the connection; the address waits")
    func failedAuthDelayedAndLogged() throws {
        let daemon = try Daemon([
            "--partitions", "1", "--auth-token", Self.token, "--auth-failure-delay-ms", "200", "--max-auth-failures", "3",
        ])
        defer { daemon.stop() }
        let guesser = try LineClient(port: daemon.port)
        var answeredAfter: [Double] = []
        for (i, guess) in ["", "0123456789abcdef0123456789abcdeX", Self.token + "0"].enumerated() {
            let started = Date()
            let answer = try guesser.fails(#"{"id":\#(i),"op":"auth","token":"\#(guess)"}"#, "unauthorized")
            answeredAfter.append(Date().timeIntervalSince(started))
            let message = (answer["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains(i == 2 ? "closing the connection" : "wrong token"), "\(answer)")
        }
        #expect(guesser.readLine() == nil)  // the third wrong token closed it
        // 200 ms, then 400 ms, then 800 ms (each doubles).
        #expect(answeredAfter[0] >= 0.19 && answeredAfter[1] >= 0.39 && answeredAfter[2] >= 0.79, "\(answeredAfter)")
        print("auth failure answers after \(answeredAfter.map { ($0 * 1000).rounded() }) ms")

        let other = try LineClient(port: daemon.port)
        _ = try other.ok(#"{"id":1,"op":"auth","token":"\#(Self.token)"}"#)
        // A guesser that does not wait for its answer: a wrong token from 127.0.0.3 on one connection, then at once
        // the right one on another. The address has to wait before its next attempt is even compared, right token
        // or not (else the missing instant answer would tell that a guess failed)...
        let guess = try SlowReader(port: daemon.port, receiveBuffer: 1 << 16, source: "127.0.0.3")
        guess.send(#"{"id":1,"op":"auth","token":"not-the-token-not-the-token"}"# + "\n")
        #expect(try waitUntil { try other.serverStats()["auth_failures"] == 4 })
        let sameHost = try SlowReader(port: daemon.port, receiveBuffer: 1 << 16, source: "127.0.0.3")
        var started = Date()
        sameHost.send(#"{"id":1,"op":"auth","token":"\#(Self.token)"}"# + "\n")
        #expect(sameHost.readLines(1).first?.contains(#""ok":true"#) == true)
        let sameHostWaited = Date().timeIntervalSince(started)
        #expect(sameHostWaited >= 0.1, "\(sameHostWaited)")
        // ...while an address without wrong tokens is answered at once.
        let otherHost = try SlowReader(port: daemon.port, receiveBuffer: 1 << 16, source: "127.0.0.2")
        started = Date()
        otherHost.send(#"{"id":1,"op":"auth","token":"\#(Self.token)"}"# + "\n")
        #expect(otherHost.readLines(1).first?.contains(#""ok":true"#) == true)
        #expect(Date().timeIntervalSince(started) < 0.1)
        print("auth: the right token from a guessing address answered after \((sameHostWaited * 1000).rounded()) ms")
        for client in [guess, sameHost, otherHost] { client.close() }

        let stats = try other.serverStats()
        #expect(stats["auth_failures"] == 4, "\(stats)")
        // One warning per failure, with the peer's address and the count on its connection.
        #expect(
            waitUntil {
                daemon.log.components(separatedBy: "authentication failed: wrong token").count - 1 == 4
            }, "\(daemon.log)")
        let lines = daemon.log.split(separator: "\n").filter { $0.contains("authentication failed") }
        #expect(lines.allSatisfy { $0.contains("warning") && $0.contains("event=auth_failed") && $0.contains("peer=127.0.0.") })
        #expect(lines.contains { $0.contains("failures=3") && $0.contains("closing=true") }, "\(lines)")
        #expect(lines.contains { $0.contains("peer=127.0.0.3:") }, "\(lines)")
    }

    @Test("before auth every request is unauthorized: no unknown_op, no field names, no parser errors")
    func authBeforeEverything() throws {
        let daemon = try Daemon(["--partitions", "1", "--auth-token", Self.token])
        defer { daemon.stop() }
        let c = try LineClient(port: daemon.port)
        for line in [
            #"{"id":1,"op":"order.explode"}"#, #"{"id":2,"op":"refund.create","restok":false}"#, #"{"id":3}"#,
            #"{"id":4,"op":"stats","extra":1}"#, "not json", #"{"id":5,"op":"ping""#,
        ] {
            let answer = try c.fails(line, "unauthorized")
            let message = (answer["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("auth"), "\(line) → \(answer)")
            #expect(!message.contains("explode") && !message.contains("restok"), "\(answer)")
        }
        // `auth` itself says what is wrong with it (it is public), and counts as no guess.
        try c.fails(#"{"id":6,"op":"auth"}"#, "missing_field")
        try c.fails(#"{"id":7,"op":"auth","token":"x","tokn":"y"}"#, "invalid_field")
        _ = try c.ok(#"{"id":8,"op":"auth","token":"\#(Self.token)"}"#)
        try c.fails(#"{"id":9,"op":"order.explode"}"#, "unknown_op")
        #expect(try c.serverStats()["auth_failures"] == 0)
    }

    @Test("token comparison and failure delays")
    func comparisonAndDelays() throws {
        #expect(Authentication.matches(Self.token, Self.token))
        for guess in ["", "0", Self.token + "0", String(Self.token.dropLast()), String(Self.token.dropLast()) + "X"] {
            #expect(!Authentication.matches(guess, Self.token), "\(guess)")
        }
        #expect(Authentication.delay(failures: 1, first: .seconds(1)) == .seconds(1))
        #expect(Authentication.delay(failures: 3, first: .seconds(1)) == .seconds(4))
        #expect(Authentication.delay(failures: 40, first: .seconds(1)) == .seconds(60))
        #expect(Authentication.problem(with: "") != nil && Authentication.problem(with: "123456789012345") != nil)
        #expect(Authentication.problem(with: "1234567890123456") == nil)
        // Across connections: a peer that sent a wrong token waits before its next attempt (its own doubling
        // delay, and a turn among such attempts, 20 a second); a peer without one never waits.
        let throttle = AuthThrottle(firstDelay: .milliseconds(100), perSecond: 20)
        #expect(throttle.wait(peer: "a") == .zero)
        throttle.failed(peer: "a")
        let first = throttle.wait(peer: "a")
        let second = throttle.wait(peer: "a")
        #expect(first > .milliseconds(80) && first <= .milliseconds(100), "\(first)")
        #expect(second - first >= .milliseconds(45), "\(first) \(second)")
        #expect(throttle.wait(peer: "b") == .zero)
        throttle.failed(peer: "a")
        #expect(throttle.wait(peer: "a") > .milliseconds(180), "doubles")
        #expect(ConnectionState.key(try SocketAddress(ipAddress: "2001:db8:0:1::7", port: 9)) == "2001:db8:0:1::/64")
        #expect(ConnectionState.key(try SocketAddress(ipAddress: "203.0.113.7", port: 9)) == "203.0.113.7")
    }
}
