import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// Shared by the test targets that start the real `refundd` (RefundServerTests, RefundctlTests): test targets
// cannot import each other, so the daemon harness lives in this small target of its own.

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A built product (`refundd`, `refundctl`, …) next to the test bundle.
public func builtProduct(_ name: String) throws -> URL {
    var candidates: [URL] = []
    let argv0 = URL(fileURLWithPath: CommandLine.arguments[0])
    candidates.append(argv0.deletingLastPathComponent().appendingPathComponent(name))
    candidates.append(Bundle.main.bundleURL.appendingPathComponent(name))
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
    candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath + "/.build/debug/" + name))
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate
    }
    throw TestFailure("\(name) not found next to the test bundle: \(candidates.map(\.path))")
}

/// A new directory under the system temporary directory.
public func temporaryDirectory(_ prefix: String) -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The real `refundd` binary, started as a subprocess on an ephemeral port with a temporary data directory.
public final class Daemon: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    public let process = Process()
    public let dataDir: String
    public let port: Int
    /// The metrics endpoint's port, when started with `--metrics-port` (its `metrics on HOST:PORT` line).
    public let metricsPort: Int?
    public let logPath: String

    public static func binary() throws -> URL { try builtProduct("refundd") }

    public static func temporaryDirectory() -> String { DaemonTestSupport.temporaryDirectory("refundd-test") }

    /// Starts `refundd --port 0 --data-dir DIR ARGS` and waits for its `listening on` line.
    public init(dataDir: String? = nil, _ arguments: [String] = []) throws {
        let dataDir = dataDir ?? Daemon.temporaryDirectory() + "/data"
        self.dataDir = dataDir
        self.logPath = dataDir + ".log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = try Daemon.binary()
        process.arguments = ["--port", "0", "--data-dir", dataDir] + arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        var text = ""
        let reader = stdout.fileHandleForReading
        // Lines up to the first `listening on` (a `metrics on` line may come before it).
        while !text.split(separator: "\n").contains(where: { $0.hasPrefix("listening on") }) {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let lines = text.split(separator: "\n")
        metricsPort = lines.first { $0.hasPrefix("metrics on ") }.flatMap { line in
            line.split(separator: ":").last.flatMap { Int($0) }
        }
        guard let line = lines.first(where: { $0.hasPrefix("listening on") }), line.hasPrefix("listening on 127.0.0.1:"),
            let port = Int(line.dropFirst("listening on 127.0.0.1:".count))
        else {
            process.waitUntilExit()
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw TestFailure("refundd did not start (exit \(process.terminationStatus)): \(text) \(log)")
        }
        self.port = port
    }

    /// Sends `signal` and waits (at most `timeout`) for the exit status.
    @discardableResult
    public func stop(_ signal: Int32 = SIGTERM, timeout: Double = 15) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
