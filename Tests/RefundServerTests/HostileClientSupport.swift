import DaemonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// Helpers for the issue 13 tests (hostile clients against the real daemon).

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass; returns whether it held.
func waitUntil(timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(10_000)
    }
    return try condition()
}

/// The resident set size of a process, in KiB (`VmRSS` of /proc/<pid>/status).
func residentKiB(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
    return 0
}

/// CPU time a process has used, in clock ticks (`utime + stime` of /proc/<pid>/stat).
func cpuTicks(_ pid: Int32) -> Int {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12 else { return 0 }
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

/// Runs `refundd ARGS` (with `environment` added) and expects it to exit by itself within `timeout` seconds:
/// its exit status and standard error. Nil status: it was still running (then it is killed).
func runRefunddToExit(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 20) throws
    -> (status: Int32?, stderr: String, stdout: String)
{
    let process = Process()
    process.executableURL = try Daemon.binary()
    process.arguments = ["--port", "0", "--data-dir", Daemon.temporaryDirectory() + "/data"] + arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let stderr = Pipe()
    let stdout = Pipe()
    process.standardError = stderr
    process.standardOutput = stdout
    try process.run()
    let exited = waitUntil(timeout: timeout) { !process.isRunning }
    if !exited {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
    let errorText = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let outputText = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return (exited ? process.terminationStatus : nil, errorText, outputText)
}

extension LineClient {
    /// The `server` counters of `stats` (the connection must be allowed to ask).
    func serverStats() throws -> [String: Int] {
        let stats = try ok(#"{"id":"stats","op":"stats"}"#)
        let server = try #require(stats["server"] as? [String: Any])
        return server.compactMapValues { $0 as? Int }
    }
}

/// A client that connects with a small receive buffer (and, if asked, from another address) and reads only when
/// told to: a slow reader's answers back up in the server.
final class SlowReader: @unchecked Sendable {
    // @unchecked: one thread sends, then the test reads or closes.
    let fd: Int32

    /// `source`: the local address to connect from (another loopback address, `127.0.0.2`, is another peer).
    init(port: Int, receiveBuffer: Int32 = 16 << 10, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var size = receiveBuffer
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                Glibc.close(fd)
                throw TestFailure("bind to \(source) failed: errno \(errno)")
            }
        }
        try connectLoopback(fd, port: port)
    }

    /// Sends all of `text` (the server reads requests while it can; a send that blocks for 2 s gives up).
    func send(_ text: String) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Sends all of `text`, or gives up (false) when a send blocks for `milliseconds` or fails.
    func sendOrGiveUp(_ text: String, milliseconds: Int = 2000) -> Bool {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: __suseconds_t(milliseconds % 1000 * 1000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Reads lines until `count` have come (or 30 s pass); returns them.
    func readLines(_ count: Int) -> [String] {
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var lines: [String] = []
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while lines.count < count {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 1 << 16, 0) }
            if n <= 0 { break }
            buffer += chunk[..<n]
            while let newline = buffer.firstIndex(of: 10) {
                lines.append(String(decoding: buffer[..<newline], as: UTF8.self))
                buffer.removeSubrange(...newline)
            }
        }
        return lines
    }

    func close() { Glibc.close(fd) }
}
