import RefundServer
import ArgumentParser
import Foundation

/// `refundctl bulk report JOB`: every order of a bulk job with what became of it (`bulk.results`, page after
/// page), as CSV or JSON lines, to stdout or a file, with a progress bar on stderr.
struct BulkReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Export a bulk job's per-order results (succeeded, pending, failed, skipped) as CSV or JSON lines.",
        discussion: """
            One row per order the job refunded or skipped: order_id, status, refund_id, amount and fee_retained \
            (in the currency's major units in CSV, minor units in JSON lines), currency, gateway_refs, reason (why \
            it was skipped, or the failure code). Example: refundctl bulk report job_1 --format csv --output job_1.csv
            """)
    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, jsonl }

    @Argument var jobID: String
    @Option(help: "csv | jsonl.") var format: Format = .csv
    @Option(help: "Only orders with this outcome: succeeded | pending | failed | skipped.") var status: String?
    @Option(help: "Write to this file instead of stdout.") var output: String?
    @OptionGroup var connection: ConnectionOptions

    static let columns = ["order_id", "status", "refund_id", "amount", "fee_retained", "currency", "gateway_refs", "reason"]

    func run() throws {
        try reporting {
            let client = try connection.connect()
            let job = try client.call("bulk.status", ["job_id": .string(jobID)])
            let total = Int(job["processed"]?.int ?? 0)
            let sink: FileHandle
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil) else {
                    throw ClientError("invalid_argument", "cannot write \(output)")
                }
                guard let handle = FileHandle(forWritingAtPath: output) else {
                    throw ClientError("invalid_argument", "cannot write \(output)")
                }
                sink = handle
            } else {
                sink = FileHandle.standardOutput
            }
            defer {
                if let output {
                    do {
                        try sink.close()
                    } catch {
                        Console.err("error write_failed: closing \(output): \(error)")
                    }
                }
            }
            if format == .csv { sink.write(Data((Self.columns.joined(separator: ",") + "\n").utf8)) }
            let progress = Progress("report", total: total)
            var written = 0
            var cursor: JSON = .null
            repeat {
                let page = try client.call(
                    "bulk.results",
                    [("job_id", .string(jobID)), ("status", status.map(JSON.string) ?? .null), ("cursor", cursor)])
                var text = ""
                for row in page["results"]?.array ?? [] {
                    text += format == .csv ? Self.csvLine(row) : row.serialized + "\n"
                    written += 1
                }
                sink.write(Data(text.utf8))
                progress.update(written)
                cursor = page["next_cursor"] ?? .null
            } while cursor != .null
            progress.finish(written)
            if output != nil { Console.err("\(written) orders written to \(output ?? "")") }
        }
    }

    /// One CSV row (RFC 4180 quoting); money in the currency's major units (`41.35`).
    static func csvLine(_ row: JSON) -> String {
        let currency = row["currency"]?.string
        func money(_ key: String) -> String {
            guard let minor = row[key]?.int else { return "" }
            return Money.decimal(minor, currency)
        }
        let cells = [
            row["order_id"]?.string ?? "", row["status"]?.string ?? "", row["refund_id"]?.string ?? "", money("amount"),
            money("fee_retained"), currency ?? "", (row["gateway_refs"]?.array ?? []).compactMap(\.string).joined(separator: " "),
            row["reason"]?.string ?? "",
        ]
        return cells.map(csvCell).joined(separator: ",") + "\n"
    }

    static func csvCell(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
