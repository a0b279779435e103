import RefundServer
import ArgumentParser
import Foundation

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Outbox events after a cursor (--follow: stream them as they come; --ack N: drop up to N).")
    @Option(help: "Only events with a sequence after this.") var after: UInt64 = 0
    @Option(help: "At most this many (without --follow).") var limit: Int?
    @Flag(help: "Subscribe and print events as they come (Ctrl-C to stop).") var follow = false
    @Option(help: "Acknowledge (drop from the outbox) every event up to this sequence, instead of listing.") var ack: UInt64?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    static let columns = ["sequence", "kind", "at", "order_id", "refund_id", "job_id", "amount", "currency", "notify_email"]

    static func row(_ event: JSON) -> [String] {
        let currency = event["currency"]?.string
        return columns.map { Render.cell($0, event[$0], currency: currency) }
    }

    /// A streamed row with fixed column widths (the table cannot be measured in advance).
    static func fixedRow(_ event: JSON?) -> String {
        let widths = [8, 26, 24, 16, 20, 8, 14, 8, 0]
        let cells = event.map(row) ?? columns.map { $0.uppercased() }
        var text = ""
        for (cell, width) in zip(cells, widths) {
            text += cell + String(repeating: " ", count: max(1, width - cell.count + 1))
        }
        while text.last == " " { text.removeLast() }
        return text
    }

    func run() throws {
        try reporting {
            let client = try connection.connect()
            if let ack {
                let result = try client.call("events.ack", ["up_to": .int(Int64(clamping: ack))])
                View.print(result, json: output.json) { "acknowledged up to \($0["up_to"]?.int ?? 0)" }
                return
            }
            guard follow else {
                let result = try client.call(
                    "events.list", ["after": .int(Int64(clamping: after)), "limit": limit.map { JSON.int(Int64($0)) } ?? .null])
                View.print(result, json: output.json) { result in
                    let events = result["events"]?.array ?? []
                    return events.isEmpty ? "(no events after \(after))" : Render.table(Events.columns, events.map(Events.row))
                }
                return
            }
            let id = client.send("events.subscribe", ["after": .int(Int64(clamping: after))])
            _ = try client.wait(for: id).get()
            if !output.json {
                Console.err("following events after \(after) (Ctrl-C to stop)")
                Console.out(Events.fixedRow(nil))
            }
            while true {
                guard let response = try client.receive(until: Date().addingTimeInterval(3600)) else { continue }
                guard let event = response.event else { continue }
                Console.out(output.json ? event.serialized : Events.fixedRow(event))
            }
        }
    }
}
