import RefundServer
import ArgumentParser
import Foundation

/// Where `refundd` is and how to talk to it.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Daemon host (env REFUNDD_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "Daemon TCP port (env REFUNDD_PORT; default 7654).")
    var port: Int?

    @Option(name: .customLong("unix-socket"), help: "Connect to this Unix socket instead of TCP (env REFUNDD_UNIX_SOCKET).")
    var unixSocket: String?

    @Option(help: "Auth token, sent first as {\"op\":\"auth\"} (env REFUNDD_AUTH_TOKEN).")
    var token: String?

    @Option(help: "Act as this staff id (the request's actor; default: the server's 'staff').")
    var actor: String?

    @Option(help: "Seconds to wait for a response.")
    var timeout: Double = 120

    func endpoint() throws(ClientError) -> Endpoint {
        let env = ProcessInfo.processInfo.environment
        if let path = unixSocket ?? env["REFUNDD_UNIX_SOCKET"].flatMap({ $0.isEmpty ? nil : $0 }) {
            return .unix(path: path)
        }
        let host = host ?? env["REFUNDD_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let portValue: Int
        if let port {
            portValue = port
        } else if let text = env["REFUNDD_PORT"], !text.isEmpty {
            guard let parsed = Int(text) else { throw ClientError("invalid_argument", "REFUNDD_PORT '\(text)' is not a number") }
            portValue = parsed
        } else {
            portValue = 7654
        }
        return .tcp(host: host, port: portValue)
    }

    var resolvedToken: String? {
        token ?? ProcessInfo.processInfo.environment["REFUNDD_AUTH_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func connect(actor override: JSON? = nil) throws(ClientError) -> Client {
        let actorValue = override ?? actor.map { JSON.object([("id", .string($0))]) }
        return try Client(endpoint: try endpoint(), token: resolvedToken, actor: actorValue, timeoutSeconds: timeout)
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the raw JSON result.")
    var json = false
}

/// Refund options shared by preview, create, approve and cancel-event.
struct RefundFlags: ParsableArguments {
    @Option(help: "Lines to refund, comma-separated (default: every active line).")
    var lines: String?

    @Option(help: "original | offline | balance | none.")
    var method: String?

    @Option(name: .customLong("fee"), help: "Cancellation fee for the order, in minor units.")
    var feeOrder: Int64?

    @Option(name: .customLong("fee-each"), help: "Cancellation fee on every selected line, in minor units.")
    var feeEach: Int64?

    @Option(name: .customLong("fee-line"), help: "Cancellation fee for one line: LINE=MINOR_UNITS (repeatable).")
    var feeLine: [String] = []

    @Option(help: "Reason (e.g. event_cancelled, customer_request).")
    var reason: String?

    @Option(help: "Note kept with the refund.")
    var note: String?

    @Flag(name: .customLong("no-restock"), help: "Do not release the tickets back to inventory.")
    var noRestock = false

    @Flag(name: .customLong("no-processing-fees"), help: "Keep the processing fees.")
    var noProcessingFees = false

    @Flag(name: .customLong("include-platform-fees"), help: "Refund the platform fees too.")
    var includePlatformFees = false

    @Flag(name: .customLong("include-booking-fee"), help: "Refund the booking fee too.")
    var includeBookingFee = false

    @Option(help: "standard | full.")
    var policy: String?

    @Flag(name: .customLong("no-notify"), help: "Send no confirmation email event.")
    var noNotify = false

    @Option(name: .customLong("email-text"), help: "Extra text for the confirmation email.")
    var emailText: String?

    @Option(name: .customLong("idempotency-key"), help: "Idempotency key.")
    var idempotencyKey: String?

    func fee() throws(ClientError) -> JSON? {
        let given = [feeOrder != nil, feeEach != nil, !feeLine.isEmpty].filter { $0 }.count
        if given > 1 { throw ClientError("invalid_argument", "give one of --fee, --fee-each, --fee-line") }
        if let feeOrder { return .object([("order", .int(feeOrder))]) }
        if let feeEach { return .object([("each", .int(feeEach))]) }
        if feeLine.isEmpty { return nil }
        var members: [(String, JSON)] = []
        for item in feeLine {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int64(parts[1]) else {
                throw ClientError("invalid_argument", "--fee-line wants LINE=MINOR_UNITS, not '\(item)'")
            }
            members.append((String(parts[0]), .int(value)))
        }
        return .object([("per_line", .object(members))])
    }

    /// The request fields these flags set (unset ones are left to the server's defaults).
    func params(defaultMethod: String? = nil) throws(ClientError) -> [(String, JSON)] {
        var p: [(String, JSON)] = []
        if let lines {
            p.append(("lines", .array(lines.split(separator: ",").map { .string(String($0).trimmingCharacters(in: .whitespaces)) })))
        }
        if let m = method ?? defaultMethod { p.append(("method", .string(m))) }
        if let fee = try fee() { p.append(("fee", fee)) }
        if let reason { p.append(("reason", .string(reason))) }
        if let note { p.append(("note", .string(note))) }
        if noRestock { p.append(("restock", false)) }
        if noProcessingFees { p.append(("include_processing_fees", false)) }
        if includePlatformFees { p.append(("include_platform_fees", true)) }
        if includeBookingFee { p.append(("include_booking_fee", true)) }
        if let policy { p.append(("policy", .string(policy))) }
        if noNotify { p.append(("notify", false)) }
        if let emailText { p.append(("email_text", .string(emailText))) }
        if let idempotencyKey { p.append(("idempotency_key", .string(idempotencyKey))) }
        return p
    }
}

/// Runs `body`, printing a `ClientError` as `error <code>: <message>` on stderr and exiting 1.
func reporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ClientError {
        Console.err(error.description)
        for item in error.blocked?.array ?? [] {
            let line = item["line"]?.string ?? "(order)"
            Console.err("  blocked \(line): \(item["reason"]?.string ?? "?")")
        }
        throw ExitCode.failure
    }
}
