import RefundServer
import ArgumentParser
import Foundation
import RefundEngine

/// The data-directory inspector (`DataDirectoryInspector`), run locally: no daemon needed. Read-only.
struct Wal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect a data directory offline: verify, list, dump (read-only; no daemon needed).",
        subcommands: [Verify.self, List.self, Dump.self])

    struct DataOptions: ParsableArguments {
        @Option(name: .customLong("data"), help: "The data directory (refundd's --data-dir).")
        var directory: String = "./refund-data"

        func inspector() throws(ClientError) -> DataDirectoryInspector {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ClientError("invalid_argument", "no data directory at \(directory)")
            }
            return DataDirectoryInspector(directory: directory)
        }
    }

    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func sequence(_ value: UInt64?) -> String { value.map(String.init) ?? "-" }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every block checksum, record and snapshot; exit 1 on any problem.")
        @OptionGroup var data: DataOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let report = try data.inspector().verify()
                if output.json {
                    Console.out(Wal.encode(report))
                } else {
                    let rows = report.logs.map { log -> [String] in
                        [
                            log.name, String(log.segments.count), String(log.segments.reduce(0) { $0 + max(0, $1.bytes) }),
                            String(log.snapshots.count), String(log.records), Wal.sequence(log.firstSequence),
                            Wal.sequence(log.lastSequence), String(log.problems.count),
                        ]
                    }
                    Console.out("data directory \(report.directory)")
                    Console.out(Render.table(["log", "segments", "bytes", "snapshots", "records", "first", "last", "problems"], rows))
                    for log in report.logs {
                        for problem in log.problems { Console.out("problem \(log.name): \(problem)") }
                        if let torn = log.tornTail { Console.out("torn tail \(log.name): \(torn)") }
                    }
                    Console.out(report.ok ? "ok: no problems" : "FAILED: \(report.logs.reduce(0) { $0 + $1.problems.count }) problem(s)")
                }
                if !report.ok { throw ExitCode.failure }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every log's segments and snapshots.")
        @OptionGroup var data: DataOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let report = try data.inspector().verify()
                if output.json {
                    Console.out(Wal.encode(report.logs))
                    return
                }
                var rows: [[String]] = []
                for log in report.logs {
                    for segment in log.segments { rows.append([log.name, "segment", segment.file, String(segment.bytes), "-", "-"]) }
                    for snapshot in log.snapshots {
                        rows.append([
                            log.name, "snapshot", snapshot.file, String(snapshot.bytes), Wal.sequence(snapshot.sequence),
                            snapshot.orders.map(String.init) ?? (snapshot.error.map { "error: \($0)" } ?? "-"),
                        ])
                    }
                }
                Console.out(rows.isEmpty ? "(no logs in \(report.directory))" : Render.table(["log", "kind", "file", "bytes", "covers", "orders"], rows))
            }
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every log record as one JSON object per line.")
        @OptionGroup var data: DataOptions
        @Option(help: "Only these logs (p0, p1, …, control; repeatable). Default: all.") var log: [String] = []
        @Option(help: "Only records from this sequence on.") var from: UInt64 = 0

        func run() throws {
            try reporting {
                let inspector = try data.inspector()
                let known = inspector.logNames()
                for name in log where !known.contains(name) {
                    throw ClientError("invalid_argument", "no log '\(name)' in \(data.directory) (logs: \(known.joined(separator: ", ")))")
                }
                do {
                    try inspector.dumpRecords(logs: log, from: from) { Console.out($0) }
                } catch {
                    throw ClientError("storage_failed", "\(error)")
                }
            }
        }
    }
}
