import DaemonTestSupport
import Foundation
import Testing

/// The README quick-start session, run by a second, independent client: `tools/refund_client.py`, written
/// against docs/protocol.md with Python's standard library only.
@Suite struct PythonClientTests {
    static var script: String {
        // Tests/RefundServerTests/PythonClientTests.swift → the repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/refund_client.py").path
    }

    @Test func quickStartSessionFromPython() throws {
        let daemon = try Daemon()
        defer { daemon.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")  // python3 from PATH
        process.arguments = ["python3", Self.script, "--port", String(daemon.port), "quickstart"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("quickstart ok"), "\(text)")
        #expect(text.contains("Total refunded 41.35 GBP"), "\(text)")
    }
}
