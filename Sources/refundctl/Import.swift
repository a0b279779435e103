import RefundServer
import ArgumentParser
import Foundation
import Synchronization

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import orders from a JSONL file (one order a line): batched, over several connections.",
        discussion: """
            Each non-blank line is an order (contract section 2). Lines go to the server --batch at a time as \
            order.put_many, over --connections connections. A line that is not a JSON object is rejected \
            locally. An order already stored with the same content is accepted again and changes nothing, so \
            re-running an import is safe. A batch the server refuses as a whole (a field error in one order) is \
            sent again a line at a time, so each rejected line is named. At the end: the count of imported and \
            rejected lines, and each rejected line's number and error. Exit status 1 if any was rejected.
            """)
    @Argument(help: "The JSONL file, or - for stdin.") var file: String
    @Option(help: "Orders per order.put_many request (1–5000; a request also stays under 900 KiB).")
    var batch: Int = 1000
    @Option(help: "Connections to send batches over at once.") var connections: Int = 4
    @Option(name: .customLong("in-flight"), help: "Requests in flight per connection.")
    var inFlight: Int = 2
    @Option(help: "Show at most this many rejected lines (all with --json).") var show: Int = 100
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    struct Rejection: Sendable {
        var line: Int
        var code: String
        var message: String
    }

    /// One order.put_many's lines: (line number, byte range in the file).
    typealias Batch = [(Int, Range<Int>)]

    /// What the connections share: the next batch to send, and what came back.
    struct Shared {
        var next = 0
        var imported = 0
        var done = 0
        var rejected: [Rejection] = []
        var failure: ClientError?
    }

    /// The largest request line the import builds (the server takes lines of up to 1 MiB).
    static let maximumRequestBytes = 900 << 10

    func run() throws {
        try reporting {
            guard (1...5000).contains(batch), (1...64).contains(connections), (1...64).contains(inFlight) else {
                throw ClientError("invalid_argument", "--batch 1–5000, --connections 1–64, --in-flight 1–64")
            }
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
            // Line spans: (line number, range), blank lines skipped; each checked to be a JSON object here, so one
            // bad line cannot spoil the batch it would have travelled in.
            var rejectedLocally: [Rejection] = []
            var batches: [Batch] = []
            var current: Batch = []
            var currentBytes = 0
            var start = 0
            var number = 0
            var total = 0
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
                number += 1
                var stop = end
                if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
                defer { start = end + 1 }
                guard bytes[start..<stop].contains(where: { $0 != 0x20 && $0 != 0x09 }) else { continue }
                total += 1
                if stop - start > Self.maximumRequestBytes - 256 {
                    rejectedLocally.append(Rejection(line: number, code: "line_too_long", message: "\(stop - start) bytes"))
                    continue
                }
                guard Self.isOneObject(bytes[start..<stop]) else {
                    // Not one JSON object: parsed here only to say why.
                    let message: String
                    do {
                        _ = try JSONParser.parse(Array(bytes[start..<stop]))
                        message = "not a JSON object"
                    } catch {
                        message = "\(error)"
                    }
                    rejectedLocally.append(Rejection(line: number, code: "invalid_json", message: message))
                    continue
                }
                if !current.isEmpty && (current.count == batch || currentBytes + (stop - start) + 1 > Self.maximumRequestBytes - 256) {
                    batches.append(current)
                    current = []
                    currentBytes = 0
                }
                current.append((number, start..<stop))
                currentBytes += stop - start + 1
            }
            if !current.isEmpty { batches.append(current) }

            let endpoint = try connection.endpoint()
            let token = connection.resolvedToken
            let actor = connection.actor.map { JSON.object([("id", .string($0))]) }
            let timeout = connection.timeout
            let progress = Progress("import", total: total)
            let shared = Mutex(Shared(done: rejectedLocally.count, rejected: rejectedLocally))
            let work = batches
            let window = inFlight
            let useful = max(1, min(connections, batches.count))
            let report = ProgressBox(progress)
            DispatchQueue.concurrentPerform(iterations: useful) { _ in
                do throws(ClientError) {
                    let client = try Client(endpoint: endpoint, token: token, actor: actor, timeoutSeconds: timeout)
                    try Self.send(work, bytes: bytes, client: client, window: window, shared: shared, progress: report)
                } catch {
                    shared.withLock { if $0.failure == nil { $0.failure = error } }
                }
            }
            let result = shared.withLock { $0 }
            if let failure = result.failure { throw failure }
            progress.finish(result.done, extra: "rejected \(result.rejected.count)")
            let rejected = result.rejected.sorted { $0.line < $1.line }
            if output.json {
                let value = JSON.object([
                    ("imported", .int(Int64(result.imported))), ("rejected", .int(Int64(rejected.count))),
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
                Console.out("imported \(result.imported), rejected \(rejected.count) of \(total) lines")
                if !rejected.isEmpty {
                    let rows = rejected.prefix(show).map { [String($0.line), $0.code, String($0.message.prefix(160))] }
                    Console.out(Render.table(["line", "code", "message"], Array(rows)))
                    if rejected.count > show { Console.out("… \(rejected.count - show) more (--show N or --json)") }
                }
            }
            if !rejected.isEmpty { throw ExitCode.failure }
        }
    }

    /// Whether the line is one JSON object as far as its brackets go: it starts with `{`, and the `{` it starts
    /// with closes at its last byte (strings and escapes skipped). That is what a batch needs of a line: spliced
    /// into `"orders":[…]` it is exactly one element, so answers by index name the right line. Whether the object
    /// is valid JSON the server checks (a batch it cannot parse is sent again a line at a time). A full parse here
    /// cost the import about 7 µs a line, as much as the server's work.
    static func isOneObject(_ line: ArraySlice<UInt8>) -> Bool {
        var i = line.startIndex
        var end = line.endIndex
        while i < end, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
        while end > i, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        guard i < end, line[i] == UInt8(ascii: "{") else { return false }
        var depth = 0
        var inString = false
        var escaped = false
        while i < end {
            let b = line[i]
            i += 1
            if inString {
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return i == end && b == UInt8(ascii: "}") }
                if depth < 0 { return false }
            default: break
            }
        }
        return false
    }

    /// The progress bar, drawn by whichever connection's thread finished a batch (one at a time).
    final class ProgressBox: @unchecked Sendable {
        private let lock = Mutex(())
        private let progress: Progress
        init(_ progress: Progress) { self.progress = progress }
        func update(_ done: Int, rejected: Int) {
            lock.withLock { _ in progress.update(done, extra: "rejected \(rejected)") }
        }
    }

    /// One connection: takes the next batches, keeps `window` requests in flight, records the answers.
    static func send(
        _ batches: [Batch], bytes: [UInt8], client: Client, window: Int, shared: borrowing Mutex<Shared>, progress: ProgressBox
    ) throws(ClientError) {
        let actorSuffix: [UInt8] = client.actor.map { Array((",\"actor\":" + $0.serialized).utf8) } ?? []
        var pending: [Int64: Int] = [:]  // request id → batch index
        // Batches refused as a whole, to send again a line at a time once nothing else is in flight (the answers
        // of the other requests would otherwise interleave with theirs).
        var again: [Int] = []
        while true {
            if pending.isEmpty, let index = again.popLast() {
                let lines = batches[index]
                let (imported, rejected) = try one(lines, bytes: bytes, client: client, actorSuffix: actorSuffix)
                record(lines.count, imported: imported, rejected: rejected, shared: shared, progress: progress)
                continue
            }
            while again.isEmpty && pending.count < window {
                let index = shared.withLock { s -> Int? in
                    guard s.next < batches.count else { return nil }
                    defer { s.next += 1 }
                    return s.next
                }
                guard let index else { break }
                let id = client.allocateID()
                var request = Array("{\"id\":\(id),\"op\":\"order.put_many\",\"orders\":[".utf8)
                for (i, (_, range)) in batches[index].enumerated() {
                    if i > 0 { request.append(UInt8(ascii: ",")) }
                    request += bytes[range]
                }
                request += Array("]".utf8)
                request += actorSuffix
                request += Array("}\n".utf8)
                client.connection.enqueue(bytes: request)
                pending[id] = index
            }
            if pending.isEmpty { return }
            guard let response = try client.receive() else {
                throw ClientError("timeout", "no response within \(Int(client.timeoutSeconds)) s")
            }
            if response.event != nil { continue }
            guard case .int(let id) = response.id, let index = pending.removeValue(forKey: id) else {
                throw ClientError("bad_response", "an answer to no request: \(response.raw.prefix(200))")
            }
            let lines = batches[index]
            var imported = 0
            var rejected: [Rejection] = []
            if let error = response.error {
                if ["invalid_field", "missing_field", "invalid_json", "line_too_long"].contains(error.code) {
                    // Refused as a whole for one order's fields: again a line at a time, to name each bad line.
                    again.append(index)
                    continue
                }
                rejected = lines.map { Rejection(line: $0.0, code: error.code, message: error.message) }
            } else {
                let refusals = response.result["rejected"]?.array ?? []
                for refusal in refusals {
                    guard let i = refusal["index"]?.int, i >= 0, Int(i) < lines.count else { continue }
                    rejected.append(
                        Rejection(
                            line: lines[Int(i)].0, code: refusal["code"]?.string ?? "unknown_error",
                            message: refusal["message"]?.string ?? ""))
                }
                imported = lines.count - rejected.count
            }
            record(lines.count, imported: imported, rejected: rejected, shared: shared, progress: progress)
        }
    }

    static func record(
        _ count: Int, imported: Int, rejected: [Rejection], shared: borrowing Mutex<Shared>, progress: ProgressBox
    ) {
        let (done, refused) = shared.withLock { s in
            s.imported += imported
            s.rejected += rejected
            s.done += count
            return (s.done, s.rejected.count)
        }
        progress.update(done, rejected: refused)
    }

    /// A batch again as one order.put per line (pipelined), for the errors of each line.
    static func one(_ lines: Batch, bytes: [UInt8], client: Client, actorSuffix: [UInt8]) throws(ClientError)
        -> (imported: Int, rejected: [Rejection])
    {
        var pending: [Int64: Int] = [:]
        for (line, range) in lines {
            let id = client.allocateID()
            pending[id] = line
            var request = Array("{\"id\":\(id),\"op\":\"order.put\",\"order\":".utf8)
            request += bytes[range]
            request += actorSuffix
            request += Array("}\n".utf8)
            client.connection.enqueue(bytes: request)
        }
        var imported = 0
        var rejected: [Rejection] = []
        while !pending.isEmpty {
            guard let response = try client.receive() else {
                throw ClientError("timeout", "no response within \(Int(client.timeoutSeconds)) s")
            }
            guard case .int(let id) = response.id, let line = pending.removeValue(forKey: id) else {
                throw ClientError("bad_response", "an answer to no request: \(response.raw.prefix(200))")
            }
            if let error = response.error {
                rejected.append(Rejection(line: line, code: error.code, message: error.message))
            } else {
                imported += 1
            }
        }
        return (imported, rejected)
    }
}
