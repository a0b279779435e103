import ArgumentParser
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import orders from a JSONL file (one order a line), pipelined.",
        discussion: """
            Each non-blank line is an order (contract section 2) sent as order.put, with at most --in-flight \
            requests unanswered. A line that is not a JSON object is rejected locally. At the end: the count of \
            imported and rejected lines, and each rejected line's number and error. Exit status 1 if any was \
            rejected.
            """)
    @Argument(help: "The JSONL file, or - for stdin.") var file: String
    @Option(name: .customLong("in-flight"), help: "Requests in flight at most (the server's default limit is 128).")
    var inFlight: Int = 64
    @Option(help: "Show at most this many rejected lines (all with --json).") var show: Int = 100
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    struct Rejection {
        var line: Int
        var code: String
        var message: String
    }

    func run() throws {
        try reporting {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: file) else {
                    throw ClientError("invalid_argument", "cannot read \(file)")
                }
                data = contents
            }
            let bytes = [UInt8](data)
            // Line spans: (line number, range), blank lines skipped.
            var lines: [(Int, Range<Int>)] = []
            var start = 0
            var number = 0
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
                number += 1
                var stop = end
                if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
                if bytes[start..<stop].contains(where: { $0 != 0x20 && $0 != 0x09 }) { lines.append((number, start..<stop)) }
                start = end + 1
            }
            let client = try connection.connect()
            let actorSuffix: [UInt8] = client.actor.map { Array((",\"actor\":" + $0.serialized).utf8) } ?? []
            let window = max(1, min(inFlight, 1024))
            let maximumLine = (1 << 20) - 256
            var rejected: [Rejection] = []
            var imported = 0
            var pending: [Int64: Int] = [:]  // request id → line number
            var unattributed: [ClientError] = []
            var next = 0
            var done = 0
            let progress = Progress("import", total: lines.count)

            func settle(_ response: Response) {
                if response.event != nil { return }
                guard case .int(let id) = response.id, let line = pending.removeValue(forKey: id) else {
                    // The server could not read a request's id: attributed to the lines left at the end.
                    if let error = response.error { unattributed.append(error) }
                    return
                }
                done += 1
                if let error = response.error {
                    rejected.append(Rejection(line: line, code: error.code, message: error.message))
                } else {
                    imported += 1
                }
            }

            while next < lines.count || pending.count > unattributed.count {
                while next < lines.count && pending.count < window {
                    let (lineNumber, range) = lines[next]
                    next += 1
                    let line = Array(bytes[range])
                    if line.count > maximumLine {
                        rejected.append(Rejection(line: lineNumber, code: "line_too_long", message: "\(line.count) bytes"))
                        done += 1
                        continue
                    }
                    do {
                        let value = try JSONParser.parse(line)
                        guard value.members != nil else {
                            rejected.append(Rejection(line: lineNumber, code: "invalid_json", message: "not a JSON object"))
                            done += 1
                            continue
                        }
                    } catch {
                        rejected.append(Rejection(line: lineNumber, code: "invalid_json", message: "\(error)"))
                        done += 1
                        continue
                    }
                    let id = client.allocateID()
                    pending[id] = lineNumber
                    var request = Array("{\"id\":\(id),\"op\":\"order.put\",\"order\":".utf8)
                    request += line
                    request += actorSuffix
                    request += Array("}\n".utf8)
                    client.connection.enqueue(bytes: request)
                }
                if pending.count > unattributed.count {
                    guard let response = try client.receive() else {
                        throw ClientError("timeout", "no response within \(Int(connection.timeout)) s")
                    }
                    settle(response)
                }
                progress.update(done, extra: "rejected \(rejected.count)")
            }
            for ((_, line), error) in zip(pending.sorted(by: { $0.value < $1.value }), unattributed) {
                rejected.append(Rejection(line: line, code: error.code, message: error.message))
            }
            progress.finish(lines.count, extra: "rejected \(rejected.count)")
            rejected.sort { $0.line < $1.line }
            if output.json {
                let value = JSON.object([
                    ("imported", .int(Int64(imported))), ("rejected", .int(Int64(rejected.count))),
                    (
                        "rejections",
                        .array(
                            rejected.map {
                                .object([("line", .int(Int64($0.line))), ("code", .string($0.code)), ("message", .string($0.message))])
                            })
                    ),
                ])
                Console.out(value.pretty())
            } else {
                Console.out("imported \(imported), rejected \(rejected.count) of \(lines.count) lines")
                if !rejected.isEmpty {
                    let rows = rejected.prefix(show).map { [String($0.line), $0.code, String($0.message.prefix(160))] }
                    Console.out(Render.table(["line", "code", "message"], Array(rows)))
                    if rejected.count > show { Console.out("… \(rejected.count - show) more (--show N or --json)") }
                }
            }
            if !rejected.isEmpty { throw ExitCode.failure }
        }
    }
}
