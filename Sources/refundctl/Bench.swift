import RefundServer
import ArgumentParser
import Foundation
import Histogram
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The load generator (issue 4, item 6): connections × pipeline depth, an op mix, a duration; throughput and
/// latency percentiles from HdrHistogram. Loopback (or a Unix socket) only.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load generator: throughput and latency percentiles (p50/p99/p99.9) per op. Loopback only.",
        discussion: """
            Warm-up: puts --orders orders (split across the connections) on a fresh event, plus --bulk-orders on \
            a second event for the bulk op. Then runs the mix for --duration seconds (or until --max-requests): \
            put = order.put of a new order; create = refund.create of a warm-up (or newly put) order not yet \
            refunded (a put is sent instead when a connection has none left); get = order.get of a known order; \
            bulk = a dry-run bulk.cancel_event of the small event. Latency is measured from the moment a request \
            is queued (with --rate: from its scheduled time, so queueing delay is included). Each run uses fresh \
            order ids.
            """)

    @Option(help: "Connections.") var connections: Int = 16
    @Option(help: "Requests in flight per connection (pipeline depth; 1: unpipelined).") var depth: Int = 8
    @Option(help: "Seconds of measurement.") var duration: Double = 10
    @Option(help: "Op weights: put, create, get, bulk.") var mix: String = "put=1,create=1,get=8,bulk=0"
    @Option(help: "Orders put during the warm-up.") var orders: Int = 10_000
    @Option(name: .customLong("bulk-orders"), help: "Orders of the small event the bulk op dry-runs.") var bulkOrders: Int = 100
    @Option(help: "Client threads (default: min(connections, 2)).") var threads: Int?
    @Option(help: "Target total requests/s (open loop, paced per connection); default: as fast as possible.")
    var rate: Double?
    @Option(name: .customLong("max-requests"), help: "Stop after this many requests in the measured phase.")
    var maxRequests: Int = 100_000_000
    @Flag(help: "Print the result as JSON.") var json = false
    @Option(
        help: ArgumentHelp(
            "Write the latency histogram of every request of the measured phase to FILE, in HdrHistogram's percentile text format (.hgrm, milliseconds).",
            valueName: "FILE"))
    var histogram: String?
    @Option(
        name: .customLong("get-include"),
        help: ArgumentHelp(
            "order.get asks for the compact view with these parts (comma-separated: order, refunds, requests; none for none).",
            valueName: "PARTS"))
    var getInclude: String?
    @OptionGroup var connection: ConnectionOptions

    enum Op: Int, CaseIterable {
        case put = 0, create, get, bulk
        var name: String { ["order.put", "refund.create", "order.get", "bulk.cancel_event"][rawValue] }
        var key: String { ["put", "create", "get", "bulk"][rawValue] }
    }

    struct Config: Sendable {
        var endpoint: Endpoint
        var token: String?
        var depth: Int
        var weights: [Int]
        var tag: String
        var rate: Double?
        var maxRequestsPerConnection: Int
        /// `order.get`'s `include` (its JSON text), for the compact view; nil: the full view.
        var getInclude: String? = nil
    }

    /// What one thread measured.
    struct Measurement: Sendable {
        var counts = [Int](repeating: 0, count: Op.allCases.count)
        var errors = [Int](repeating: 0, count: Op.allCases.count)
        var errorCodes: [String: Int] = [:]
        var histograms = (0..<Op.allCases.count).map { _ in Bench.histogram() }
        var fallbacks = 0
        var failure: String?

        mutating func merge(_ other: Measurement) {
            for i in counts.indices {
                counts[i] += other.counts[i]
                errors[i] += other.errors[i]
                histograms[i].add(other.histograms[i])
            }
            for (code, n) in other.errorCodes { errorCodes[code, default: 0] += n }
            fallbacks += other.fallbacks
            if failure == nil { failure = other.failure }
        }
    }

    static func histogram() -> Histogram<UInt64> {
        // Microseconds, up to 60 s, 3 significant digits.
        Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    func parseMix() throws(ClientError) -> [Int] {
        var weights = [0, 0, 0, 0]
        for part in mix.split(separator: ",") {
            let kv = part.split(separator: "=")
            guard kv.count == 2, let op = Op.allCases.first(where: { $0.key == kv[0].trimmingCharacters(in: .whitespaces) }),
                let weight = Int(kv[1].trimmingCharacters(in: .whitespaces)), weight >= 0
            else {
                throw ClientError("invalid_argument", "--mix wants put=N,create=N,get=N,bulk=N, not '\(part)'")
            }
            weights[op.rawValue] = weight
        }
        guard weights.reduce(0, +) > 0 else { throw ClientError("invalid_argument", "--mix: every weight is 0") }
        return weights
    }

    func run() throws {
        try reporting {
            let endpoint = try connection.endpoint()
            guard endpoint.isLocal else {
                throw ClientError("invalid_argument", "bench drives loopback or a Unix socket only, not \(endpoint)")
            }
            guard (1...1000).contains(connections), (1...1024).contains(depth), duration > 0, duration <= 3600,
                orders >= 0, orders <= 10_000_000, bulkOrders >= 0, bulkOrders <= 100_000
            else {
                throw ClientError(
                    "invalid_argument", "out of range: connections 1–1000, depth 1–1024, duration ≤ 3600 s, orders ≤ 10M")
            }
            let weights = try parseMix()
            let threadCount = max(1, min(threads ?? min(connections, 2), connections))
            let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
            let config = Config(
                endpoint: endpoint, token: connection.resolvedToken, depth: depth, weights: weights, tag: tag,
                rate: rate.map { $0 / Double(connections) },
                maxRequestsPerConnection: max(1, maxRequests / connections),
                getInclude: getInclude.map { parts in
                    let names = parts == "none" ? [] : parts.split(separator: ",", omittingEmptySubsequences: true)
                    return "[" + names.map { "\"\($0)\"" }.joined(separator: ",") + "]"
                })

            // Connections, split across threads; each thread owns its connections.
            var groups: [[BenchConnection]] = Array(repeating: [], count: threadCount)
            for index in 0..<connections {
                let c = try BenchConnection(index: index, config: config)
                groups[index % threadCount].append(c)
            }
            if !json {
                Console.out(
                    "bench \(endpoint): \(connections) connections × depth \(depth), \(threadCount) threads, mix \(mix), \(Int(duration)) s\(rate.map { ", rate \(Int($0))/s" } ?? "")"
                )
            }

            // Warm-up: the orders for create/get, and the small event for bulk.
            let perConnection = orders / connections
            for (i, group) in groups.enumerated() {
                for c in group {
                    c.warmupTarget = perConnection + (c.index < orders % connections ? 1 : 0)
                    if c.index == 0 { c.bulkTarget = weights[Op.bulk.rawValue] > 0 ? bulkOrders : 0 }
                }
                groups[i] = group
            }
            let warmStart = Date()
            let warm = Bench.drive(groups, phase: .warmup, until: Date().addingTimeInterval(600))
            let warmSeconds = Date().timeIntervalSince(warmStart)
            if let failure = warm.failure { throw ClientError("bench_failed", "warm-up: \(failure)") }
            let warmPuts = warm.counts[Op.put.rawValue]
            if warm.errors.reduce(0, +) > 0 {
                Console.err("warm-up errors: \(warm.errorCodes.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
            }
            if !json {
                Console.out(
                    "warm-up: \(warmPuts) orders put in \(String(format: "%.2f", warmSeconds)) s (\(Int(Double(warmPuts) / max(warmSeconds, 0.001)))/s)"
                )
            }

            let cpuBefore = Bench.serverCPU(config)
            let start = Date()
            let measured = Bench.drive(groups, phase: .measure, until: start.addingTimeInterval(duration))
            let seconds = Date().timeIntervalSince(start)
            let cpuAfter = Bench.serverCPU(config)
            if let failure = measured.failure { throw ClientError("bench_failed", failure) }
            var serverCPU: Double?
            if let before = cpuBefore, let after = cpuAfter, after >= before { serverCPU = after - before }
            report(measured, seconds: seconds, warmPuts: warmPuts, warmSeconds: warmSeconds, serverCPU: serverCPU)
        }
    }

    /// The daemon's CPU so far (user + system seconds, from `stats`), or nil if it does not report it.
    static func serverCPU(_ config: Config) -> Double? {
        do throws(ClientError) {
            let client = try Client(endpoint: config.endpoint, token: config.token)
            let stats = try client.call("stats")
            guard let server = stats["server"], let user = server["cpu_user_seconds"],
                let system = server["cpu_system_seconds"]
            else { return nil }
            func seconds(_ value: JSON) -> Double? {
                switch value {
                case .double(let d): d
                case .int(let i): Double(i)
                default: nil
                }
            }
            guard let u = seconds(user), let s = seconds(system) else { return nil }
            return u + s
        } catch {
            return nil
        }
    }

    func report(_ m: Measurement, seconds: Double, warmPuts: Int, warmSeconds: Double, serverCPU: Double? = nil) {
        var total = Bench.histogram()
        for h in m.histograms { total.add(h) }
        let totalCount = m.counts.reduce(0, +)
        if let histogram {
            // Recorded in microseconds; written in milliseconds, as HdrHistogram's plotter expects.
            var text = ""
            total.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000)
            if FileManager.default.createFile(atPath: histogram, contents: Data(text.utf8)) {
                Console.err("histogram of \(total.totalCount) requests written to \(histogram)")
            } else {
                Console.err("error: could not write the histogram to \(histogram)")
            }
        }
        // Server CPU per request: the daemon's user + system time over the measured phase (it includes the
        // `stats` calls around it and anything else the daemon did meanwhile: a bound, not a profile).
        let cpuPerRequest = serverCPU.map { totalCount > 0 ? $0 * 1e6 / Double(totalCount) : 0 }
        func ms(_ us: UInt64) -> String { String(format: "%.3f", Double(us) / 1000) }
        func row(_ name: String, _ count: Int, _ errors: Int, _ h: Histogram<UInt64>) -> [String] {
            [
                name, String(count), String(Int(Double(count) / max(seconds, 0.001))), String(errors),
                ms(h.valueAtPercentile(50)), ms(h.valueAtPercentile(99)), ms(h.valueAtPercentile(99.9)), ms(h.max),
            ]
        }
        if json {
            var ops: [(String, JSON)] = []
            for op in Op.allCases where m.counts[op.rawValue] > 0 {
                let h = m.histograms[op.rawValue]
                ops.append(
                    (
                        op.name,
                        .object([
                            ("requests", .int(Int64(m.counts[op.rawValue]))),
                            ("per_second", .double((Double(m.counts[op.rawValue]) / seconds).rounded())),
                            ("errors", .int(Int64(m.errors[op.rawValue]))), ("p50_us", .int(Int64(h.valueAtPercentile(50)))),
                            ("p99_us", .int(Int64(h.valueAtPercentile(99)))), ("p999_us", .int(Int64(h.valueAtPercentile(99.9)))),
                            ("max_us", .int(Int64(h.max))),
                        ])
                    ))
            }
            let value = JSON.object([
                ("connections", .int(Int64(connections))), ("depth", .int(Int64(depth))), ("mix", .string(mix)),
                ("seconds", .double(seconds)), ("requests", .int(Int64(totalCount))),
                ("per_second", .double((Double(totalCount) / seconds).rounded())),
                ("p50_us", .int(Int64(total.valueAtPercentile(50)))), ("p99_us", .int(Int64(total.valueAtPercentile(99)))),
                ("p999_us", .int(Int64(total.valueAtPercentile(99.9)))), ("ops", .object(ops)),
                ("warmup_orders", .int(Int64(warmPuts))), ("create_fallbacks", .int(Int64(m.fallbacks))),
                ("errors", .object(m.errorCodes.sorted { $0.key < $1.key }.map { ($0.key, JSON.int(Int64($0.value))) })),
                ("server_cpu_us_per_request", cpuPerRequest.map { .double(($0 * 100).rounded() / 100) } ?? .null),
            ])
            Console.out(value.pretty())
            return
        }
        var rows: [[String]] = []
        for op in Op.allCases where m.counts[op.rawValue] > 0 {
            rows.append(row(op.name, m.counts[op.rawValue], m.errors[op.rawValue], m.histograms[op.rawValue]))
        }
        rows.append(row("all", totalCount, m.errors.reduce(0, +), total))
        Console.out(Render.table(["op", "requests", "req/s", "errors", "p50 ms", "p99 ms", "p99.9 ms", "max ms"], rows))
        Console.out("\(totalCount) requests in \(String(format: "%.2f", seconds)) s: \(Int(Double(totalCount) / max(seconds, 0.001))) requests/s")
        if let cpuPerRequest {
            Console.out("server CPU: \(String(format: "%.1f", cpuPerRequest)) µs per request (user + system, from stats)")
        }
        if m.fallbacks > 0 {
            Console.out("note: \(m.fallbacks) create(s) found no unrefunded order and sent order.put instead (raise --orders)")
        }
        if !m.errorCodes.isEmpty {
            Console.out("errors: " + m.errorCodes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
    }

    enum Phase: Sendable { case warmup, measure }

    /// Runs every group on its own thread until each connection is done or `deadline` passes.
    static func drive(_ groups: [[BenchConnection]], phase: Phase, until deadline: Date) -> Measurement {
        let results = Mutex<[Measurement]>([])
        let box = Groups(groups)
        let deadlineNanos = monotonicNanos() + UInt64(max(0, deadline.timeIntervalSinceNow) * 1e9)
        DispatchQueue.concurrentPerform(iterations: groups.count) { index in
            var m = Measurement()
            Bench.loop(box.groups[index], phase: phase, deadline: deadlineNanos, into: &m)
            results.withLock { $0.append(m) }
        }
        var total = Measurement()
        for m in results.withLock({ $0 }) { total.merge(m) }
        return total
    }

    /// One thread's poll loop over its connections.
    static func loop(_ group: [BenchConnection], phase: Phase, deadline: UInt64, into m: inout Measurement) {
        for c in group { c.begin(phase) }
        var fds = [pollfd](repeating: pollfd(), count: group.count)
        while true {
            let now = monotonicNanos()
            let stopping = now >= deadline
            var busy = 0
            for (i, c) in group.enumerated() {
                if !stopping && c.failure == nil { c.fill(now: now, phase: phase, into: &m) }
                var events: Int16 = 0
                if c.inFlight > 0 { events |= Int16(POLLIN) }
                if c.connection.pendingOutput > 0 { events |= Int16(POLLOUT) }
                fds[i] = pollfd(fd: c.connection.fd, events: events, revents: 0)
                if events != 0 { busy += 1 }
            }
            // Done: nothing in flight (and, before the deadline, nothing more to send).
            if busy == 0 && (stopping || group.allSatisfy { $0.finished(phase) || $0.failure != nil }) { break }
            if stopping && now >= deadline + 10_000_000_000 { break }  // 10 s for the stragglers
            var timeout: Int32 = 5
            if busy == 0, let next = group.compactMap(\.nextSendAt).min() {
                timeout = Int32(max(0, min(5, (Int64(next) - Int64(now)) / 1_000_000)))
            }
            let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout) }
            if ready <= 0 { continue }
            let received = monotonicNanos()
            for (i, c) in group.enumerated() where fds[i].revents != 0 {
                do {
                    if fds[i].revents & Int16(POLLOUT) != 0 { try c.connection.flush() }
                    if fds[i].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                        try c.connection.readAvailable()
                        c.drain(received: received, into: &m)
                        if c.connection.closedByPeer && c.inFlight > 0 {
                            c.failure = "connection \(c.index) closed by the server"
                        }
                    }
                } catch {
                    c.failure = "connection \(c.index): \(error)"
                }
                if let failure = c.failure, m.failure == nil { m.failure = failure }
            }
            if m.failure != nil && group.allSatisfy({ $0.failure != nil || $0.inFlight == 0 }) { break }
        }
        for c in group where c.inFlight > 0 && m.failure == nil {
            m.failure = "connection \(c.index): \(c.inFlight) responses missing after the deadline"
        }
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// The connection groups, handed to the threads; each group is used by exactly one thread.
final class Groups: @unchecked Sendable {
    let groups: [[BenchConnection]]
    init(_ groups: [[BenchConnection]]) { self.groups = groups }
}

/// One benchmark connection: its requests in flight, its pool of orders, its pacing.
final class BenchConnection {
    let index: Int
    let config: Bench.Config
    let connection: LineConnection
    var warmupTarget = 0
    var bulkTarget = 0
    private var sentWarmup = 0
    private var sentBulkOrders = 0
    private var sentMeasured = 0
    private var nextID: Int64 = 1
    private var nextOrder = 0
    /// id → (op, start in ns).
    private var flight: [Int64: (Bench.Op, UInt64)] = [:]
    /// Orders put and not yet refunded (create takes from here), and every order put (get reads these).
    private var unrefunded: [String] = []
    private var unrefundedStart = 0
    private var known: [String] = []
    private(set) var nextSendAt: UInt64?
    private let interval: UInt64?
    private var random = SystemRandomNumberGenerator()
    var failure: String?

    init(index: Int, config: Bench.Config) throws(ClientError) {
        self.index = index
        self.config = config
        if let token = config.token {
            // Authenticate with the blocking client, then take its socket over.
            let client = try Client(endpoint: config.endpoint, token: token)
            connection = client.connection
        } else {
            connection = try LineConnection(config.endpoint)
        }
        interval = config.rate.map { UInt64(1e9 / max($0, 0.001)) }
    }

    var inFlight: Int { flight.count }

    func begin(_ phase: Bench.Phase) {
        if phase == .measure, interval != nil { nextSendAt = Bench.monotonicNanos() }
    }

    func finished(_ phase: Bench.Phase) -> Bool {
        switch phase {
        case .warmup: sentWarmup >= warmupTarget && sentBulkOrders >= bulkTarget
        case .measure: sentMeasured >= config.maxRequestsPerConnection
        }
    }

    private func orderJSON(_ id: String, event: String) -> String {
        #"{"id":"\#(id)","event":"\#(event)","customer":"cus_\#(id)","currency":"GBP","lines":[{"id":"a","ticket_type":"tt_bench","price":2000},{"id":"b","ticket_type":"tt_bench","price":2000}],"tenders":[{"id":"t1","method":"card","amount":4000,"gateway_ref":"pi_\#(id)"}]}"#
    }

    private func newOrderID() -> String {
        defer { nextOrder += 1 }
        return "bench_\(config.tag)_\(index)_\(nextOrder)"
    }

    private func enqueue(_ op: Bench.Op, _ body: String, start: UInt64) {
        let id = nextID
        nextID += 1
        flight[id] = (op, start)
        connection.enqueue("{\"id\":\(id),\(body)}")
    }

    private func put(event: String, start: UInt64) {
        let id = newOrderID()
        unrefunded.append(id)
        known.append(id)
        enqueue(.put, "\"op\":\"order.put\",\"order\":\(orderJSON(id, event: event))", start: start)
    }

    /// Queues requests while below the pipeline depth (and, with a rate, when they are due).
    func fill(now: UInt64, phase: Bench.Phase, into m: inout Bench.Measurement) {
        while flight.count < config.depth && !finished(phase) {
            switch phase {
            case .warmup:
                if sentBulkOrders < bulkTarget {
                    sentBulkOrders += 1
                    let id = newOrderID()
                    enqueue(.put, "\"op\":\"order.put\",\"order\":\(orderJSON(id, event: "evt_bench_\(config.tag)_bulk"))", start: now)
                } else {
                    sentWarmup += 1
                    put(event: "evt_bench_\(config.tag)", start: now)
                }
            case .measure:
                var start = now
                if let interval, let due = nextSendAt {
                    if due > now { return }
                    start = due
                    nextSendAt = due + interval
                }
                sentMeasured += 1
                send(pick(), start: start, into: &m)
            }
        }
    }

    private func pick() -> Bench.Op {
        let total = config.weights.reduce(0, +)
        var r = Int.random(in: 0..<total, using: &random)
        for op in Bench.Op.allCases {
            r -= config.weights[op.rawValue]
            if r < 0 { return op }
        }
        return .get
    }

    private func send(_ op: Bench.Op, start: UInt64, into m: inout Bench.Measurement) {
        switch op {
        case .put:
            put(event: "evt_bench_\(config.tag)", start: start)
        case .create:
            guard unrefundedStart < unrefunded.count else {
                m.fallbacks += 1
                put(event: "evt_bench_\(config.tag)", start: start)
                return
            }
            let id = unrefunded[unrefundedStart]
            unrefundedStart += 1
            if unrefundedStart > 4096 && unrefundedStart * 2 > unrefunded.count {
                unrefunded.removeFirst(unrefundedStart)
                unrefundedStart = 0
            }
            enqueue(.create, "\"op\":\"refund.create\",\"order_id\":\"\(id)\",\"method\":\"original\",\"reason\":\"bench\"", start: start)
        case .get:
            guard !known.isEmpty else {
                put(event: "evt_bench_\(config.tag)", start: start)
                return
            }
            let id = known[Int.random(in: 0..<known.count, using: &random)]
            let include = config.getInclude.map { ",\"include\":\($0)" } ?? ""
            enqueue(.get, "\"op\":\"order.get\",\"order_id\":\"\(id)\"\(include)", start: start)
        case .bulk:
            enqueue(
                .bulk,
                "\"op\":\"bulk.cancel_event\",\"events\":[\"evt_bench_\(config.tag)_bulk\"],\"method\":\"original\",\"reason\":\"bench\",\"dry_run\":true",
                start: start)
        }
    }

    /// Reads every complete response line: the fast path reads `{"id":N,"ok":true` without a full parse.
    func drain(received: UInt64, into m: inout Bench.Measurement) {
        while let line = connection.nextLine() {
            guard !line.isEmpty else { continue }
            var id: Int64?
            var ok = false
            let prefix: [UInt8] = Array(#"{"id":"#.utf8)
            if line.starts(with: prefix) {
                var i = line.startIndex + prefix.count
                var value: Int64 = 0
                var digits = 0
                while i < line.endIndex, line[i] >= 0x30, line[i] <= 0x39, digits < 18 {
                    value = value * 10 + Int64(line[i] - 0x30)
                    i += 1
                    digits += 1
                }
                let okPrefix: [UInt8] = Array(#","ok":true"#.utf8)
                if digits > 0, line[i...].starts(with: okPrefix) {
                    id = value
                    ok = true
                }
            }
            var code: String?
            if id == nil {
                guard let response = try? Response(line: line) else {
                    failure = "not JSON: \(String(decoding: line.prefix(120), as: UTF8.self))"
                    continue
                }
                if response.event != nil { continue }
                id = response.id.int
                ok = response.error == nil
                code = response.error?.code
            }
            guard let key = id, let (op, start) = flight.removeValue(forKey: key) else {
                m.errorCodes[code ?? "unmatched_response", default: 0] += 1
                continue
            }
            m.counts[op.rawValue] += 1
            let micros = received > start ? (received - start) / 1000 : 0
            _ = m.histograms[op.rawValue].record(min(micros, 60_000_000))
            if !ok {
                m.errors[op.rawValue] += 1
                m.errorCodes[code ?? "error", default: 0] += 1
            }
        }
    }
}
