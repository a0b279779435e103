import DaemonTestSupport
import Foundation
import RefundCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One version, reported the same way by both programs and by the protocol's `ping`.
@Suite("versions: --version and ping")
struct VersionTests {
    @Test("refundctl --version and refundd --version print the shared version")
    func versionFlags() throws {
        let ctl = try refundctl(["--version"])
        #expect(ctl.status == 0, "\(ctl.stderr)")
        #expect(ctl.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "refundctl \(RefundEngineVersion.description)")

        let daemon = Process()
        daemon.executableURL = try product("refundd")
        daemon.arguments = ["--version"]
        let output = Pipe()
        daemon.standardOutput = output
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == "refundd \(RefundEngineVersion.description)")
        #expect(RefundEngineVersion.description.hasPrefix(RefundEngineVersion.current + " (protocol 1, "))
    }

    @Test("ping answers the release and the protocol version")
    func ping() throws {
        let daemon = try Daemon(["--partitions", "1"])
        let raw = try refundctl(["call", "ping"], port: daemon.port)
        #expect(raw.status == 0, "\(raw.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any])
        #expect(result["protocol_version"] as? Int == RefundEngineVersion.protocolVersion)
        #expect(result["version"] as? String == RefundEngineVersion.current)

        let pong = try refundctl(["ping"], port: daemon.port)
        #expect(pong.status == 0, "\(pong.stderr)")
        #expect(pong.stdout.contains("(refundd \(RefundEngineVersion.current), protocol \(RefundEngineVersion.protocolVersion))"))
        #expect(daemon.stop() == 0)
    }
}
