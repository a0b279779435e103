import ArgumentParser
import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import Prometheus
import RefundCore
import RefundEngine
import RefundServer
import RefundStorage
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `refundd`: the refund engine as a daemon, serving the line-delimited JSON protocol (docs/protocol.md).
///
/// Every option also reads an environment variable (`REFUNDD_<NAME>`, e.g. `REFUNDD_PORT`); a flag wins over the
/// environment, which wins over the default.
@main
struct Refundd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refundd",
        abstract: "The RefundEngine daemon: the line-delimited JSON protocol over TCP and/or a Unix socket.",
        discussion: """
            Every option can also be set by an environment variable REFUNDD_<OPTION> (upper case, dashes as \
            underscores), e.g. REFUNDD_PORT=7000, REFUNDD_AUTH_TOKEN=secret. Flags win over the environment.
            SIGTERM or SIGINT: stop accepting, answer the requests already read, write a snapshot, fsync, exit 0.
            """,
        version: "refundd \(RefundEngineVersion.description)")

    @Option(help: "TCP host to listen on (default 127.0.0.1). A non-loopback host requires --auth-token.")
    var host: String?

    @Option(help: "TCP port (default 7654; 0 picks a free port, printed as 'listening on HOST:PORT').")
    var port: Int?

    @Flag(help: "Do not listen on TCP (use with --unix-socket).")
    var noTcp = false

    @Option(help: "Also listen on this Unix domain socket path.")
    var unixSocket: String?

    @Option(help: "Data directory: write-ahead logs and snapshots (default ./refund-data).")
    var dataDir: String?

    @Option(help: "fsync policy: always | interval:<ms> | never (default always).")
    var fsync: String?

    @Option(help: "Payment gateway: simulated | external (default simulated; external: card refunds stay pending until refund.settle).")
    var gateway: String?

    @Option(help: "Simulated gateway: latency per batch in milliseconds (default 0).")
    var gatewayLatencyMs: Int?

    @Option(help: "Simulated gateway: failures per million requests (default 0).")
    var gatewayFailuresPerMillion: Int?

    @Option(help: "Simulated gateway: answer pending and confirm after this many milliseconds (default: answer at once).")
    var gatewayConfirmMs: Int?

    @Option(help: "Number of partitions (default: the processor count). A data directory keeps its partition count.")
    var partitions: Int?

    @Option(help: "Customer self-service refunds close this many hours before the event starts (default 24).")
    var selfServiceCutoffHours: Int?

    @Option(help: "Gateway requests per second at most, for every refund (bulk jobs, single refunds, retries); set it a little under the payment provider's limit (default: unlimited).")
    var gatewayRate: Int?

    @Option(help: "Gateway requests in flight at once at most (default: unlimited).")
    var gatewayConcurrency: Int?

    @Option(help: "Simulated gateway: refuse (rate_limited) more than this many requests in any second, as a provider does (default: no limit).")
    var gatewayProviderLimit: Int?

    @Option(help: "Snapshot a partition after this many log records (default 1000000; 0: no record trigger).")
    var snapshotEvery: Int?

    @Option(help: "… or after this many bytes of log records (default 268435456; 0: no size trigger).")
    var snapshotEveryBytes: Int?

    @Flag(help: "Cut a corrupt log at its last good record instead of refusing to start.")
    var repair = false

    @Option(help: "Require {\"op\":\"auth\",\"token\":..} first on every connection. At least 16 bytes (e.g. openssl rand -hex 16); an empty or shorter token is refused at start.")
    var authToken: String?

    @Option(help: "With a token: close a connection not authenticated this many seconds after it connected (default 10; 0: never).")
    var authTimeout: Double?

    @Option(help: "Close a connection idle this many seconds: nothing read or written, no request running, no event subscription; or none of its responses read (default 300; 0: never).")
    var idleTimeout: Double?

    @Option(help: "With a token: connections only authenticated clients can hold; at most max-connections minus this may be unauthenticated, and a new one beyond that closes the oldest unauthenticated one (default 16).")
    var authReserve: Int?

    @Option(help: "Wrong tokens a connection may send; the last closes it (default 3).")
    var maxAuthFailures: Int?

    @Option(help: "Answer the first wrong token on a connection after this many milliseconds, each later one after twice the previous (default 1000).")
    var authFailureDelayMs: Int?

    @Option(help: "Per connection: bytes of responses waiting to be written before the server stops reading it (default 1048576).")
    var maxOutboundBytes: Int?

    @Option(help: "Longest request line in bytes (default 1048576).")
    var maxLineBytes: Int?

    @Option(help: "Most simultaneous connections (default 1024).")
    var maxConnections: Int?

    @Option(help: "Requests in flight per connection before the server stops reading it (default 128).")
    var maxInFlight: Int?

    @Option(help: "Log level: trace | debug | info | notice | warning | error | critical (default info).")
    var logLevel: String?

    @Option(help: "Log format: text | json (one JSON object per line on standard error; default text).")
    var logFormat: String?

    @Option(help: "Serve Prometheus metrics and /healthz, /readyz over HTTP on this port (default: off; 0 picks a free port, printed as 'metrics on HOST:PORT').")
    var metricsPort: Int?

    @Option(help: "Host of the metrics endpoint (default 127.0.0.1).")
    var metricsHost: String?

    @Option(help: "Log an fsync slower than this many milliseconds (default 100).")
    var slowFsyncMs: Int?

    @Flag(help: .hidden)
    var measureCodec = false

    mutating func run() async throws {
        if measureCodec {
            for result in CodecMeasurement.run() {
                printLine("\(result.name): \(result.bytes) bytes, \((result.microseconds * 100).rounded() / 100) µs")
            }
            return
        }
        let env = Environment()
        // Flags first: a bad setting (an empty or short token) is refused before anything listens.
        let settings = try Settings(self, env: env)
        let level = Logger.Level(rawValue: logLevel ?? env["LOG_LEVEL"] ?? "info") ?? .info
        let format = logFormat ?? env["LOG_FORMAT"] ?? "text"
        guard format == "text" || format == "json" else {
            throw ValidationError("--log-format must be text or json, not '\(format)'")
        }
        LoggingSystem.bootstrap { label in
            if format == "json" {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "refundd")
        func integer(_ flag: Int?, _ name: String) throws -> Int? {
            if let flag { return flag }
            guard let text = env[name] else { return nil }
            guard let value = Int(text) else { throw ValidationError("REFUNDD_\(name) must be an integer") }
            return value
        }
        let slowFsyncMs = try integer(self.slowFsyncMs, "SLOW_FSYNC_MS")
        let metricsPort = try integer(self.metricsPort, "METRICS_PORT")
        let metricsHost = self.metricsHost ?? env["METRICS_HOST"]
        if let slowFsyncMs, slowFsyncMs < 1 { throw ValidationError("--slow-fsync-ms must be at least 1") }
        // Metrics first: the handles the engine makes when it opens must already go to Prometheus, and /readyz
        // must answer "recovering" while it does.
        let readiness = Readiness()
        var metricsChannel: (any NIOCore.Channel)?
        if let metricsPort {
            guard (0...65535).contains(metricsPort) else { throw ValidationError("--metrics-port must be 0...65535") }
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let host = metricsHost ?? "127.0.0.1"
            let channel = try await MetricsEndpoint.start(
                host: host, port: metricsPort, group: MultiThreadedEventLoopGroup.singleton,
                routes: MetricsRoutes(registry: registry, readiness: readiness))
            metricsChannel = channel
            let bound = channel.localAddress?.port ?? metricsPort
            printLine("metrics on \(host):\(bound)")
            logger.info("metrics endpoint", metadata: ["host": "\(host)", "port": "\(bound)"])
        }

        logger.info(
            "opening data directory",
            metadata: ["dir": "\(settings.durability.directory)", "partitions": "\(settings.engine.partitions)"])
        let engine: Engine
        var durability = settings.durability
        durability.logger = Logger(label: "refund-engine")  // fail-stops, repairs, failed snapshots: once each
        if let slowFsyncMs { durability.slowFsync = .milliseconds(slowFsyncMs) }
        do {
            engine = try await Engine.open(
                configuration: settings.engine, durability: durability, gateway: settings.gateway)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(70)
        }
        if let summary = engine.recoverySummary {
            logger.info(
                "recovered",
                metadata: [
                    "orders_from_snapshots": "\(summary.ordersFromSnapshots)",
                    "records_replayed": "\(summary.recordsReplayed)", "torn_tails": "\(summary.tornTails.count)",
                    "repairs": "\(summary.repairs.count)", "resumed_jobs": "\(summary.resumedJobs)",
                    "missing": "\(summary.missing)", "skipped_snapshots": "\(summary.skippedSnapshots.count)",
                ])
        }
        engine.startRetryScheduler()
        readiness.ready(engine)

        let server = RefundServer(engine: engine, configuration: settings.server, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: ServerService(server: server, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        var failure: (any Error)?
        do {
            try await group.run()
        } catch {
            failure = error
            logger.error("server failed: \(error)")
        }
        logger.info("closing the engine (snapshot, fsync)")
        do {
            try await engine.close()
        } catch {
            logger.critical("closing the engine failed: \(error)")
            throw ExitCode(74)
        }
        try? await metricsChannel?.close()  // the process is ending; a failed close changes nothing
        logger.info("stopped")
        if failure != nil { throw ExitCode(1) }
    }
}

/// Runs the server until a graceful shutdown signal.
struct ServerService: Service {
    let server: RefundServer
    let logger: Logger

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.run { addresses in
                for address in addresses { printLine("listening on \(address)") }
            }
        } onGracefulShutdown: { [server, logger] in
            logger.info("shutting down: no new connections; answering requests in flight")
            server.shutdown()
        }
    }
}

/// Prints and flushes at once (stdout may be a pipe read by a test or a supervisor).
func printLine(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(1, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

/// The process environment, for `REFUNDD_*` variables.
struct Environment {
    private let values: [String: String]

    init() {
        var values: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                values[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        self.values = values
    }

    /// `REFUNDD_<name>`; empty values count as unset.
    subscript(_ name: String) -> String? {
        guard let value = values["REFUNDD_" + name], !value.isEmpty else { return nil }
        return value
    }

    /// `REFUNDD_<name>` is set, to the empty string.
    func isSetEmpty(_ name: String) -> Bool { values["REFUNDD_" + name] == "" }
}

/// Flags, then environment, then defaults, checked.
struct Settings {
    var server: ServerConfiguration
    var engine: EngineConfiguration
    var durability: DurabilityOptions
    var gateway: any PaymentGateway

    init(_ command: Refundd, env: Environment) throws {
        func int(_ flag: Int?, _ name: String, _ fallback: Int, range: ClosedRange<Int>) throws -> Int {
            let value: Int
            if let flag {
                value = flag
            } else if let text = env[name] {
                guard let parsed = Int(text) else { throw ValidationError("REFUNDD_\(name) must be an integer") }
                value = parsed
            } else {
                value = fallback
            }
            guard range.contains(value) else {
                throw ValidationError(
                    "\(String(name.lowercased().map { $0 == "_" ? "-" : $0 })) must be in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        let noTCP = command.noTcp || env["NO_TCP"] == "1" || env["NO_TCP"] == "true"
        let host = command.host ?? env["HOST"] ?? "127.0.0.1"
        let unixSocket = command.unixSocket ?? env["UNIX_SOCKET"]
        if noTCP && unixSocket == nil { throw ValidationError("--no-tcp needs --unix-socket") }
        func seconds(_ flag: Double?, _ name: String, _ fallback: Double) throws -> Duration? {
            let value: Double
            if let flag {
                value = flag
            } else if let text = env[name] {
                guard let parsed = Double(text) else { throw ValidationError("REFUNDD_\(name) must be a number of seconds") }
                value = parsed
            } else {
                value = fallback
            }
            guard value.isFinite, value >= 0, value <= 86_400 else {
                throw ValidationError(
                    "\(String(name.lowercased().map { $0 == "_" ? "-" : $0 })) must be 0...86400 seconds")
            }
            return value == 0 ? nil : .milliseconds(Int64((value * 1000).rounded(.up)))
        }
        // An empty or short token is an open door (`auth` with "" succeeded): refused, never taken as "no token".
        if env.isSetEmpty("AUTH_TOKEN") && command.authToken == nil {
            throw ValidationError("REFUNDD_AUTH_TOKEN is set but empty; unset it, or give a token of at least \(ServerConfiguration.minimumTokenBytes) bytes")
        }
        let token = command.authToken ?? env["AUTH_TOKEN"]
        server = ServerConfiguration(
            host: noTCP ? nil : host, port: try int(command.port, "PORT", 7654, range: 0...65535),
            unixSocketPath: unixSocket,
            maximumLineBytes: try int(command.maxLineBytes, "MAX_LINE_BYTES", 1 << 20, range: 64...(256 << 20)),
            maximumConnections: try int(command.maxConnections, "MAX_CONNECTIONS", 1024, range: 1...1_000_000),
            maximumInFlightPerConnection: try int(command.maxInFlight, "MAX_IN_FLIGHT", 128, range: 1...65536),
            authToken: token,
            authTimeout: try seconds(command.authTimeout, "AUTH_TIMEOUT", 10),
            idleTimeout: try seconds(command.idleTimeout, "IDLE_TIMEOUT", 300),
            authReserve: try int(command.authReserve, "AUTH_RESERVE", 16, range: 0...1_000_000),
            maximumAuthFailures: try int(command.maxAuthFailures, "MAX_AUTH_FAILURES", 3, range: 1...100),
            authFailureDelay: .milliseconds(
                try int(command.authFailureDelayMs, "AUTH_FAILURE_DELAY_MS", 1000, range: 0...60_000)),
            maximumOutboundBytes: try int(
                command.maxOutboundBytes, "MAX_OUTBOUND_BYTES", 1 << 20, range: 4096...(1 << 30)))
        do {
            try server.validate()
        } catch {
            throw ValidationError(
                token == nil
                    ? "\(error.message): give --auth-token or REFUNDD_AUTH_TOKEN"
                    : "--auth-token / REFUNDD_AUTH_TOKEN: \(error.message)")
        }

        let rate = try int(command.gatewayRate, "GATEWAY_RATE", 0, range: 0...1_000_000)
        let concurrency = try int(command.gatewayConcurrency, "GATEWAY_CONCURRENCY", 0, range: 0...1_000_000)
        engine = EngineConfiguration(
            partitions: try int(
                command.partitions, "PARTITIONS", EngineConfiguration.activeProcessorCount, range: 1...1024),
            selfServiceCutoffHours: Int64(
                try int(command.selfServiceCutoffHours, "SELF_SERVICE_CUTOFF_HOURS", 24, range: 0...8760)),
            gatewayLimits: GatewayLimits(
                requestsPerSecond: rate > 0 ? Double(rate) : nil, concurrency: concurrency > 0 ? concurrency : nil))

        let fsyncText = command.fsync ?? env["FSYNC"] ?? "always"
        let fsync: FsyncPolicy
        switch fsyncText {
        case "always": fsync = .always
        case "never": fsync = .never
        default:
            guard fsyncText.hasPrefix("interval:"), let ms = Int(fsyncText.dropFirst("interval:".count)), ms > 0 else {
                throw ValidationError("--fsync must be always, never or interval:<milliseconds>, not '\(fsyncText)'")
            }
            fsync = .interval(milliseconds: ms)
        }
        durability = DurabilityOptions(
            directory: command.dataDir ?? env["DATA_DIR"] ?? "./refund-data", fsync: fsync,
            snapshotEveryRecords: try int(command.snapshotEvery, "SNAPSHOT_EVERY", 1_000_000, range: 0...Int.max),
            snapshotEveryBytes: try int(command.snapshotEveryBytes, "SNAPSHOT_EVERY_BYTES", 256 << 20, range: 0...Int.max),
            repair: command.repair || env["REPAIR"] == "1" || env["REPAIR"] == "true")

        let latency = try int(command.gatewayLatencyMs, "GATEWAY_LATENCY_MS", 0, range: 0...600_000)
        let failures = try int(
            command.gatewayFailuresPerMillion, "GATEWAY_FAILURES_PER_MILLION", 0, range: 0...1_000_000)
        let confirm = try int(command.gatewayConfirmMs, "GATEWAY_CONFIRM_MS", -1, range: -1...3_600_000)
        let providerLimit = try int(command.gatewayProviderLimit, "GATEWAY_PROVIDER_LIMIT", 0, range: 0...1_000_000)
        switch command.gateway ?? env["GATEWAY"] ?? "simulated" {
        case "simulated":
            gateway = SimulatedGateway(
                .init(
                    latency: .milliseconds(latency), failuresPerMillion: failures,
                    asyncConfirmation: confirm >= 0 ? .milliseconds(confirm) : nil,
                    requestsPerSecond: providerLimit > 0 ? providerLimit : nil))
        case "external":
            gateway = SimulatedGateway(.init(neverConfirm: true))
        case let other:
            throw ValidationError("--gateway must be simulated or external, not '\(other)'")
        }
    }
}
