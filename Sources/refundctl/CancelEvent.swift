import RefundServer
import ArgumentParser
import Foundation

struct CancelEvent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel-event",
        abstract: "Cancel whole events in bulk: dry run, confirmation, live progress, summary.",
        discussion: """
            Runs a dry run first and prints what it would do, asks for confirmation (--yes skips it; without a \
            terminal --yes is required), starts the job, shows its progress from bulk.status, and prints the final \
            summary. Fees are in minor units.
            """)
    @Argument(help: "Event ids.") var events: [String]
    @Option(help: "original | offline | balance | none.") var method: String = "original"
    @Option(help: "Cancellation fee retained per order, in minor units.") var fee: Int64?
    @Option(help: "Reason recorded on every refund.") var reason: String = "event_cancelled"
    @Option(name: .customLong("payment-method"), help: "Only orders paid with this tender method (card, wallet, …).")
    var paymentMethod: String?
    @Option(help: "Only orders from this channel (online, box_office, …).") var channel: String?
    @Flag(name: .customLong("no-restock"), help: "Do not release the tickets.") var noRestock = false
    @Flag(name: .customLong("no-notify"), help: "Queue no confirmation emails.") var noNotify = false
    @Option(name: .customLong("email-text"), help: "Extra text for the confirmation emails.") var emailText: String?
    @Option(help: "Currency for the amounts shown (default: looked up from an order of the event).") var currency: String?
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Option(name: .customLong("poll-ms"), help: "bulk.status polling interval.") var pollMilliseconds: Int = 200
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func request(dryRun: Bool) -> [(String, JSON)] {
        var p: [(String, JSON)] = [
            ("events", .array(events.map(JSON.string))), ("method", .string(method)), ("reason", .string(reason)),
        ]
        if let fee { p.append(("fee", .object([("order", .int(fee))]))) }
        if let paymentMethod { p.append(("payment_method", .string(paymentMethod))) }
        if let channel { p.append(("channel", .string(channel))) }
        if noRestock { p.append(("restock", false)) }
        if noNotify { p.append(("notify", false)) }
        if let emailText { p.append(("email_text", .string(emailText))) }
        if dryRun { p.append(("dry_run", true)) }
        return p
    }

    func run() throws {
        try reporting {
            guard !events.isEmpty else { throw ClientError("invalid_argument", "name at least one event") }
            if !yes && !Console.stdinIsTTY {
                throw ClientError("confirmation_required", "not a terminal: pass --yes to cancel without a prompt")
            }
            let client = try connection.connect()
            let dry = try client.call("bulk.cancel_event", request(dryRun: true))
            var money = currency
            if money == nil, let event = events.first {
                money = client.currency(ofEvent: event, knownOrder: View.anyOrderID(dry))
            }
            if output.json {
                Console.err(dry.serialized)
            } else {
                Console.out("Dry run of cancelling \(events.joined(separator: ", ")) (method \(method)\(fee.map { ", fee \(Money.format($0, money)) per order" } ?? "")):")
                Console.out(View.bulk(dry, currency: money))
            }
            if (dry["total"]?.int ?? 0) == 0 {
                Console.out("no orders to cancel")
                return
            }
            if !yes {
                Console.err("Cancel \(dry["succeeded"]?.int ?? 0) order(s) and refund \(Money.format(dry["refunded"]?.int ?? 0, money))? [y/N] ", newline: false)
                let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
                guard answer == "y" || answer == "yes" else {
                    Console.err("cancelled: nothing changed")
                    throw ExitCode.failure
                }
            }
            var status = try client.call("bulk.cancel_event", request(dryRun: false))
            guard let jobID = status["job_id"]?.string else {
                throw ClientError("bad_response", "bulk.cancel_event returned no job_id: \(status.serialized.prefix(200))")
            }
            let total = Int(status["total"]?.int ?? 0)
            let progress = Progress("job \(jobID)", total: total)
            // Until the job is completed, or aborted (from another terminal: `refundctl bulk abort`) with nothing
            // pending. A paused job (`refundctl bulk pause`) is shown as paused and followed until resumed.
            func ended(_ status: JSON) -> Bool {
                switch status["state"]?.string {
                case "completed": true
                case "aborted": (status["pending"]?.int ?? 0) == 0
                default: false
                }
            }
            while !ended(status) {
                let state = status["state"]?.string ?? "running"
                progress.update(
                    Int(status["processed"]?.int ?? 0),
                    extra: (state == "running" ? "" : "\(state.uppercased()) ")
                        + "refunded \(Money.format(status["refunded"]?.int ?? 0, money)) failed \(status["failed"]?.int ?? 0)"
                        + Self.pace(status))
                usleep(useconds_t(max(10, pollMilliseconds) * 1000))
                status = try client.call("bulk.status", ["job_id": .string(jobID)])
            }
            progress.finish(
                Int(status["processed"]?.int ?? Int64(total)), extra: status["state"]?.string == "aborted" ? "aborted" : "done")
            if money == nil { money = client.currency(ofEvent: events[0], knownOrder: View.anyOrderID(status)) }
            View.print(status, json: output.json) { View.bulk($0, currency: money) }
            if (status["failed"]?.int ?? 0) > 0 {
                Console.err("\(status["failed"]?.int ?? 0) refund(s) failed: see refundctl attention")
            }
        }
    }

    /// `, 100 orders/s, ETA 2m05s` from `bulk.status`, when the job reports them.
    static func pace(_ status: JSON) -> String {
        func number(_ value: JSON?) -> Double? {
            switch value {
            case .double(let d)?: d
            case .int(let i)?: Double(i)
            default: nil
            }
        }
        var text = ""
        if let rate = number(status["orders_per_second"]) { text += ", \(Int(rate.rounded())) orders/s" }
        if let eta = number(status["eta_seconds"]) {
            let seconds = Int(eta.rounded(.up))
            text += seconds >= 60 ? ", ETA \(seconds / 60)m\(String(format: "%02d", seconds % 60))s" : ", ETA \(seconds)s"
        }
        return text
    }
}
