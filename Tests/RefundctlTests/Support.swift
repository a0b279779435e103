import DaemonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The built products (`refundd`, `refundctl`) next to the test bundle.
func product(_ name: String) throws -> URL { try builtProduct(name) }

func temporaryDirectory() -> String { DaemonTestSupport.temporaryDirectory("refundctl-test") }

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the built `refundctl` with `arguments` (stdin /dev/null: not a terminal), waiting at most `timeout`.
func refundctl(_ arguments: [String], port: Int? = nil, timeout: Double = 30) throws -> Run {
    let process = Process()
    process.executableURL = try product("refundctl")
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    if let port { environment["REFUNDD_PORT"] = String(port) }
    environment["REFUNDD_HOST"] = nil
    environment["REFUNDD_UNIX_SOCKET"] = nil
    process.environment = environment
    let directory = temporaryDirectory()
    let outPath = directory + "/stdout", errPath = directory + "/stderr"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw TestFailure("refundctl \(arguments.joined(separator: " ")) did not finish in \(timeout) s")
    }
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return Run(
        status: process.terminationStatus,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// The contract's example order (section 2).
func orderJSON(_ id: String, event: String = "evt_1") -> String {
    #"""
    {"id":"\#(id)","event":"\#(event)","event_starts_at":"2030-12-01T19:00:00Z","customer":"cus_9","email":"a@example.com","currency":"GBP","channel":"online","source":"paid","parent":null,"frozen":false,"sync_pending":false,"booking_fee":150,"lines":[{"id":"l1","kind":"ticket","ticket_type":"tt_ga","price":5000,"discount":500,"tax":750,"processing_fee":135,"platform_fee":99,"transferred":false,"claimed":false}],"tenders":[{"id":"t1","method":"card","amount":3000,"gateway_ref":"pi_1"},{"id":"t2","method":"wallet","amount":1884}]}
    """#
}

/// A two-ticket order paid by card.
func simpleOrderJSON(_ id: String, event: String) -> String {
    #"""
    {"id":"\#(id)","event":"\#(event)","customer":"cus_\#(id)","currency":"GBP","lines":[{"id":"a","ticket_type":"tt_a","price":2000},{"id":"b","ticket_type":"tt_a","price":2000}],"tenders":[{"id":"t1","method":"card","amount":4000}]}
    """#
}
