import DaemonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 13 item 2: a client that asks for large answers and reads none of them costs the server about a page,
/// not a page per request (before: 60–77 MB per such connection, 803 MB for ten, ~380 MB kept afterwards).
@Suite("refundd against slow readers of large answers")
struct SlowReaderTests {
    @Test("ten slow readers of 500 KB refund.list pages: the daemon's memory stays bounded, and is given back")
    func slowReadersOfLargeReplies() throws {
        let daemon = try Daemon(["--partitions", "2"])
        defer { daemon.stop() }
        let pid = daemon.process.processIdentifier
        var phases: [(String, Date)] = [("start", Date())]
        // 1,000 orders with a refund each: one refund.list page of 1,000 refunds.
        let loader = try LineClient(port: daemon.port, timeoutSeconds: 60)
        var batch = ""
        for i in 0..<1000 {
            batch += #"{"id":"p\#(i)","op":"order.put","order":\#(simpleOrderJSON("big_" + String(i)))}"# + "\n"
            batch += #"{"id":"r\#(i)","op":"refund.create","order_id":"big_\#(i)","method":"original","reason":"r"}"# + "\n"
        }
        let bytes = Array(batch.utf8)
        let writer = Thread { loader.send(bytes: bytes) }
        writer.start()
        for _ in 0..<2000 {
            let answer = try loader.readObject()
            #expect(answer["ok"] as? Bool == true, "\(answer)")
        }
        // One page read whole, so the baseline includes what serving a page leaves allocated.
        #expect(loader.send(#"{"id":"page","op":"refund.list","limit":1000}"#))
        let page = try #require(loader.readLine())
        #expect(page.utf8.count > 500_000, "\(page.utf8.count)")
        let baseline = residentKiB(pid)
        phases.append(("loaded", Date()))

        // Ten connections each pipeline 100 requests for that page and read nothing.
        let request = #"{"id":1,"op":"refund.list","limit":1000}"# + "\n"
        let started = Date()
        let readers = try (0..<10).map { _ in try SlowReader(port: daemon.port) }
        let senders = readers.map { reader in Thread { reader.send(String(repeating: request, count: 100)) } }
        for sender in senders { sender.start() }
        var peak = baseline
        func sample() { peak = max(peak, residentKiB(pid)) }
        // Until every connection's output has backed up (each pauses its reading once)...
        #expect(
            try waitUntil(timeout: 30) {
                sample()
                return try loader.serverStats()["backpressure_pauses"] ?? 0 >= 10
            })
        // ...and the daemon has done all it will do for them: no CPU used for 30 samples, 10 ms apart. (Before the
        // fix it went on encoding every page asked for, and its memory grew with each.)
        var lastTicks = cpuTicks(pid)
        var still = 0
        #expect(
            waitUntil(timeout: 30) {
                sample()
                let ticks = cpuTicks(pid)
                still = ticks == lastTicks ? still + 1 : 0
                lastTicks = ticks
                return still >= 30
            }, "the daemon kept working for slow readers")
        sample()
        let stalledAfter = Date().timeIntervalSince(started)
        phases.append(("quiet", Date()))
        // Those readers go away; memory goes back.
        for reader in readers { reader.close() }
        #expect(try waitUntil(timeout: 30) { try loader.serverStats()["connections"] == 1 })
        _ = try loader.ok(#"{"id":"ping","op":"ping"}"#)
        let after = residentKiB(pid)
        print(
            "slow readers: RSS baseline \(baseline / 1024) MiB, peak \(peak / 1024) MiB (+\((peak - baseline) / 1024)), after \(after / 1024) MiB (+\((after - baseline) / 1024)); page \(page.utf8.count) bytes; quiet after \(stalledAfter) s"
        )
        #expect(peak - baseline < 64 * 1024, "peak \(peak) KiB over baseline \(baseline) KiB")
        #expect(after - baseline < 32 * 1024, "after \(after) KiB over baseline \(baseline) KiB")

        phases.append(("after", Date()))
        defer {
            phases.append(("late", Date()))
            print(zip(phases, phases.dropFirst()).map { "\($1.0) \(($1.1.timeIntervalSince($0.1) * 100).rounded() / 100) s" })
        }
        // A slow reader loses nothing: one that reads at last gets every answer.
        let late = try LineClient(port: daemon.port, timeoutSeconds: 30)
        #expect(late.send((0..<4).map { #"{"id":\#($0),"op":"refund.list","limit":1000}"# }.joined(separator: "\n")))
        var ids = Set<Int>()
        for _ in 0..<4 {
            let answer = try late.readObject()
            #expect(answer["ok"] as? Bool == true && ((answer["result"] as? [String: Any])?["refunds"] as? [Any])?.count == 1000)
            if let id = answer["id"] as? Int { ids.insert(id) }
        }
        #expect(ids == [0, 1, 2, 3])
    }

    @Test("a client whose reading is paused cannot make the daemon hold megabytes of its lines")
    func pausedReaderCannotFloodTheInbound() throws {
        // A wrong token pauses reading its connection for 1.5 s: meanwhile each of four connections sends 64 lines
        // of 1,000,000 bytes. Before the inbound budget the daemon took 64 lines per connection (256 MB here).
        let daemon = try Daemon([
            "--partitions", "1", "--auth-token", "0123456789abcdef0123456789abcdef", "--auth-failure-delay-ms", "1500",
        ])
        defer { daemon.stop() }
        let pid = daemon.process.processIdentifier
        let baseline = residentKiB(pid)
        let line = String(repeating: "x", count: 1_000_000) + "\n"
        let flooders = try (0..<4).map { _ in try SlowReader(port: daemon.port, receiveBuffer: 1 << 16) }
        for flooder in flooders { flooder.send(#"{"id":1,"op":"auth","token":"wrong-wrong-wrong-wrong"}"# + "\n") }
        let senders = flooders.map { flooder in
            Thread {
                for _ in 0..<64 { if !flooder.sendOrGiveUp(line, milliseconds: 400) { return } }
            }
        }
        for sender in senders { sender.start() }
        var peak = baseline
        // Until every sender is blocked (the daemon stopped reading) or done; each gives up after 0.4 s blocked.
        _ = waitUntil(timeout: 1.4) {
            peak = max(peak, residentKiB(pid))
            return senders.allSatisfy(\.isFinished)
        }
        peak = max(peak, residentKiB(pid))
        print("paused readers: RSS baseline \(baseline / 1024) MiB, peak \(peak / 1024) MiB (+\((peak - baseline) / 1024))")
        #expect(peak - baseline < 40 * 1024, "peak \(peak) KiB over baseline \(baseline) KiB")
        for flooder in flooders { flooder.close() }
    }

    @Test("a client that stops reading is closed by the idle timeout, and its slot is freed")
    func stalledReaderIsClosed() throws {
        let daemon = try Daemon(["--partitions", "1", "--idle-timeout", "1"])
        defer { daemon.stop() }
        let loader = try LineClient(port: daemon.port)
        var batch = ""
        for i in 0..<200 {
            batch += #"{"id":"p\#(i)","op":"order.put","order":\#(simpleOrderJSON("st_" + String(i)))}"# + "\n"
            batch += #"{"id":"r\#(i)","op":"refund.create","order_id":"st_\#(i)","method":"original","reason":"r"}"# + "\n"
        }
        #expect(loader.send(bytes: Array(batch.utf8)))
        for _ in 0..<400 { _ = try loader.readObject() }
        // Pages of 200 refunds (~100 KB) until the output backs up, then more requests: it reads none of them.
        let stalled = try SlowReader(port: daemon.port)
        stalled.send(String(repeating: #"{"id":1,"op":"refund.list"}"# + "\n", count: 12) + #"{"id":2,"op":"ping"}"# + "\n")
        #expect(try waitUntil { try loader.serverStats()["backpressure_pauses"] ?? 0 >= 1 })
        // The idle timeout closes it (nothing it can take moves), and the server lets go of it entirely.
        #expect(try waitUntil { try loader.serverStats()["idle_timeouts"] == 1 })
        #expect(try waitUntil { try loader.serverStats()["connections"] == 1 }, "the closed connection still holds its slot")
        stalled.close()
    }
}
