import Logging
import NIOCore
import NIOPosix
import RefundCore
import RefundEngine
import Synchronization

public struct ServerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The socket face of the engine: the line-delimited JSON protocol of contract section 7 over TCP and/or a Unix
/// domain socket (SwiftNIO, async API). See `docs/protocol.md`.
///
/// ```swift
/// let server = RefundServer(engine: engine, configuration: ServerConfiguration(port: 0))
/// try await server.run { addresses in print("listening on \(addresses[0])") }  // until shutdown()
/// ```
public final class RefundServer: Sendable {
    public let engine: Engine
    public let configuration: ServerConfiguration
    let logger: Logger
    let dispatcher: Dispatcher
    let counters = ServerCounters()
    let events: ServerEvents
    let authThrottle: AuthThrottle

    private struct State {
        var shuttingDown = false
        var listeners: [any NIOCore.Channel] = []
        var registry: ConnectionRegistry<any NIOCore.Channel>
    }
    private let state: Mutex<State>

    public init(engine: Engine, configuration: ServerConfiguration, logger: Logger = Logger(label: "refundd.server")) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        self.dispatcher = Dispatcher(engine: engine, counters: counters)
        self.events = ServerEvents(counters: counters, logger: logger)
        self.authThrottle = AuthThrottle(
            firstDelay: configuration.authFailureDelay, perSecond: configuration.authFailuresPerSecond)
        self.state = Mutex(
            State(
                registry: ConnectionRegistry(
                    limit: configuration.maximumConnections, unauthenticatedLimit: configuration.unauthenticatedLimit)))
    }

    typealias Connection = NIOAsyncChannel<InboundBatch, ByteBuffer>

    /// A connection as the accept loop hands it over: the channel and what its two sides share.
    struct AcceptedConnection: Sendable {
        var channel: Connection
        var state: ConnectionState
    }

    /// Binds the listeners, reports their addresses (`host:port` and/or the socket path), and serves until
    /// ``shutdown()``: then it stops accepting, lets every connection finish the requests it has read, and
    /// returns once all connections are closed. Refuses a configuration ``ServerConfiguration/validate()``
    /// refuses (an empty or short token).
    public func run(onListening: @Sendable ([String]) -> Void = { _ in }) async throws {
        try configuration.validate()
        let group = MultiThreadedEventLoopGroup.singleton
        var listeners: [NIOAsyncChannel<AcceptedConnection, Never>] = []
        var addresses: [String] = []
        if let host = configuration.host {
            let listener = try await bootstrap(group).bind(host: host, port: configuration.port) { channel in
                self.initializeConnection(channel)
            }
            listeners.append(listener)
            let port = listener.channel.localAddress?.port ?? configuration.port
            addresses.append(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        }
        if let path = configuration.unixSocketPath {
            let listener = try await bootstrap(group).bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) {
                channel in
                self.initializeConnection(channel)
            }
            listeners.append(listener)
            addresses.append(path)
        }
        guard !listeners.isEmpty else { throw ServerError(message: "nothing to listen on: give a host or a socket path") }
        let stopAtOnce = state.withLock { s in
            s.listeners = listeners.map(\.channel)
            return s.shuttingDown
        }
        if stopAtOnce { for listener in listeners { listener.channel.close(promise: nil) } }
        onListening(addresses)

        try await withThrowingDiscardingTaskGroup { group in
            for listener in listeners {
                group.addTask {
                    try await withThrowingDiscardingTaskGroup { connections in
                        do {
                            try await listener.executeThenClose { inbound in
                                for try await connection in inbound {
                                    connections.addTask { await self.serve(connection) }
                                }
                            }
                        } catch {
                            // Closing the listener at shutdown ends the accept loop with an error on some paths.
                            if !self.isShuttingDown { throw error }
                        }
                    }
                }
            }
        }
        logger.info("server stopped")
    }

    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Graceful shutdown: stop accepting, stop reading from every connection; the requests already read are
    /// answered, then each connection closes and ``run(onListening:)`` returns.
    public func shutdown() {
        let (listeners, connections) = state.withLock { s in
            s.shuttingDown = true
            return (s.listeners, s.registry.connections)
        }
        for listener in listeners { listener.close(promise: nil) }
        for connection in connections { connection.close(mode: .input, promise: nil) }
        let grace = configuration.shutdownGracePeriod
        Task { [weak self] in
            try? await Task.sleep(for: grace)
            guard let self else { return }
            let stragglers = self.state.withLock { $0.registry.connections }
            if !stragglers.isEmpty { self.logger.warning("closing \(stragglers.count) connections that did not drain") }
            for connection in stragglers { connection.close(promise: nil) }
        }
    }

    /// `SO_SNDBUF` of every connection.
    static let socketSendBufferBytes = 256 << 10

    private func bootstrap(_ group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // The kernel's share of a connection's output: fixed, not autotuned up to tcp_wmem's maximum (4 MiB),
            // so a client that reads nothing holds at most this (doubled by the kernel) in the kernel, plus what
            // the server itself holds back (ConnectionQueue).
            .childChannelOption(.socketOption(.so_sndbuf), value: Self.socketSendBufferBytes)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.maxMessagesPerRead, value: 16)
    }

    /// The pipeline: ``ConnectionGuard`` (deadlines, writability), the line splitter, ``InboundBudgetHandler``
    /// (bytes of lines waiting), the async channel.
    private func initializeConnection(_ channel: any NIOCore.Channel) -> EventLoopFuture<AcceptedConnection> {
        let configuration = self.configuration
        let events = self.events
        let dispatcher = self.dispatcher
        return channel.eventLoop.makeCompletedFuture {
            let queue = ConnectionQueue(
                limit: configuration.maximumInFlightPerConnection, maximumBytes: configuration.maximumOutboundBytes,
                onPause: { events.backpressurePaused() })
            let connection = ConnectionState(
                queue: queue, address: channel.remoteAddress, authenticated: configuration.authToken == nil)
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuard(
                    state: connection, authTimeout: configuration.authToken == nil ? nil : configuration.authTimeout,
                    idleTimeout: configuration.idleTimeout, events: events, dispatcher: dispatcher))
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(BoundedLineDecoder(maximumLineBytes: configuration.maximumLineBytes)))
            try channel.pipeline.syncOperations.addHandler(InboundBudgetHandler(budget: connection.inbound))
            let channel = try Connection(
                wrappingChannelSynchronously: channel,
                configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 64)))
            return AcceptedConnection(channel: channel, state: connection)
        }
    }

    // MARK: One connection

    private enum Admission {
        case admitted(evicting: ConnectionRegistry<any NIOCore.Channel>.Evicted?)
        case refused(ServerEvents.Refusal)
    }

    private func serve(_ accepted: AcceptedConnection) async {
        let connection = accepted.channel
        let channel = connection.channel
        let id = ObjectIdentifier(channel)
        let admission = state.withLock { s -> Admission in
            if s.shuttingDown { return .refused(.shuttingDown) }
            switch s.registry.admit(id, channel, peer: accepted.state.peer) {
            case .full: return .refused(.limit)
            case .admitted(let evicted): return .admitted(evicting: evicted)
            }
        }
        counters.acceptedConnections.add(1, ordering: .relaxed)
        switch admission {
        case .refused(let refusal):
            events.connectionRefused(peer: accepted.state.peer, refusal, limit: configuration.maximumConnections)
            let error =
                refusal == .shuttingDown
                ? RefundError(.shuttingDown, "the server is shutting down")
                : RefundError(
                    .tooManyConnections, "the server is at its limit of \(configuration.maximumConnections) connections")
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(dispatcher.failure(id: .null, error))
            }
            return
        case .admitted(let evicted):
            if let evicted, let limit = configuration.unauthenticatedLimit {
                events.connectionEvicted(peer: evicted.peer, unauthenticatedLimit: limit)
                evicted.connection.pipeline.fireUserInboundEventTriggered(
                    ConnectionGuard.Close.evicted(unauthenticatedLimit: limit))
            }
        }
        counters.connections.add(1, ordering: .relaxed)
        defer {
            counters.connections.subtract(1, ordering: .relaxed)
            state.withLock { $0.registry.remove(id) }
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await self.serve(
                    inbound: inbound, outbound: outbound, connection: accepted.state, channel: channel, id: id)
            }
        } catch {
            logger.debug("connection ended: \(error)")
        }
    }

    static let authenticateFirst = RefundError(
        .unauthorized, "this server needs {\"op\":\"auth\",\"token\":..} first on a connection")

    private func serve(
        inbound: NIOAsyncChannelInboundStream<InboundBatch>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        connection: ConnectionState, channel: any NIOCore.Channel, id: ObjectIdentifier
    ) async throws {
        let queue = connection.queue
        let dispatcher = self.dispatcher
        let metrics = dispatcher.metrics
        metrics.connections.increment()
        defer { metrics.connections.decrement() }
        await withDiscardingTaskGroup { group in
            group.addTask {
                // The one writer: what is queued goes out in one write (one flush) per batch.
                defer { queue.close() }
                while let batch = await queue.nextBatch() {
                    do {
                        try await outbound.write(contentsOf: batch)
                    } catch {
                        return
                    }
                    var sent = 0
                    for buffer in batch { sent &+= buffer.readableBytes }
                    metrics.bytesOut.increment(by: sent)
                    queue.written()
                    connection.touch()
                }
            }
            var session = ConnectionSession()
            let answerWriter = AnswerWriter(channel: channel, queue: queue, connection: connection, metrics: metrics)
            var authFailures = 0
            // The hand-written byte-level codec (JSON/): Foundation's JSONDecoder took ~9 µs per refund.create
            // line here, this one ~3.5 µs, and 3.4 → 0.9 µs for order.get (`refundd --measure-codec`).
            let decoder = JSONValueDecoder()
            do {
                reading: for try await lines in inbound {
                    // Every line of one read: the hot requests among them go to the engine as one batch (one hop per
                    // partition), run here by the read loop once the read's lines are decoded; the others run one
                    // task each. Lines that arrive meanwhile wait in the channel and make the next batch.
                    var batch: [ConnectionSession.BatchedRequest] = []
                    var bytes = 0
                    for item in lines { bytes &+= item.byteCount }
                    metrics.bytesIn.increment(by: bytes)
                    if connection.inbound.taken(bytes) {
                        channel.pipeline.fireUserInboundEventTriggered(InboundBudget.Resume())
                    }
                    for item in lines {
                        if !queue.tryAcquire() {
                            // At the in-flight limit or backed up: what this read batched so far must start first
                            // (its answers are what frees the slots).
                            await session.run(batch: batch, dispatcher: dispatcher, queue: queue, writer: answerWriter)
                            batch.removeAll()
                            guard await queue.acquire() else { break reading }
                        }
                        counters.requests.add(1, ordering: .relaxed)
                        // Until it authenticates, a connection learns nothing but how to authenticate: every line
                        // that is not an `auth` request is answered `unauthorized`, whatever op, field or mistake it
                        // holds (so an unknown op is not `unknown_op`, and a misspelt field names no field).
                        let request: Request
                        switch item {
                        case .tooLong:
                            let error = RefundError(
                                .lineTooLong,
                                "the line is longer than \(configuration.maximumLineBytes) bytes; it was discarded")
                            metrics.refused(connection.isAuthenticated ? error.code : .unauthorized)
                            queue.push(
                                dispatcher.failure(id: .null, connection.isAuthenticated ? error : Self.authenticateFirst),
                                slot: true)
                            continue
                        case .line(let line):
                            switch line.withUnsafeReadableBytes({ RequestLineDecoding.request($0, decoder: decoder) }) {
                            case .success(let decoded):
                                request = decoded
                            case .failure(let error):
                                metrics.refused(connection.isAuthenticated ? error.code : .unauthorized)
                                queue.push(
                                    dispatcher.failure(
                                        id: .null, connection.isAuthenticated ? error : Self.authenticateFirst),
                                    slot: true)
                                continue
                            }
                        }
                        guard connection.isAuthenticated || request.op == "auth" else {
                            metrics.refused(.unauthorized)
                            queue.push(dispatcher.failure(id: request.id, Self.authenticateFirst), slot: true)
                            continue
                        }
                        var operation: Operation
                        switch request.operation {
                        case .failure(let error):
                            metrics.refused(error.code)
                            queue.push(dispatcher.failure(id: request.id, error), slot: true)
                            continue
                        case .success(let op):
                            operation = op
                        }
                        if case .hello(let version) = operation {
                            let answer = hello(version, id: request.id, connection: connection)
                            if answer.refused { metrics.refused(.invalidField) }
                            queue.push(answer.bytes, slot: true)
                            continue
                        }
                        // Protocol 2: `order.get` without `include` is the compact view.
                        if connection.protocolVersion >= 2, case .orderGet(let orderID, nil) = operation {
                            operation = .orderGet(orderID: orderID, include: [])
                        }
                        do throws(RefundError) {
                            if let hot = try dispatcher.batchable(operation, caller: request.caller, actorID: request.actorID) {
                                var item = ConnectionSession.BatchedRequest(
                                    id: request.id, request: hot, op: operation.name, key: operation.orderKey)
                                if case .orderGet(_, let include) = operation { item.include = include }
                                batch.append(item)
                                continue
                            }
                        } catch {
                            metrics.answered(op: operation.name, code: error.code, since: .now)
                            queue.push(dispatcher.failure(id: request.id, error), slot: true)
                            continue
                        }
                        if case .auth(let token) = operation {
                            let open = await authenticate(
                                token, id: request.id, connection: connection, registryID: id, failures: &authFailures)
                            if open { continue } else { break reading }
                        }
                        if case .eventsSubscribe(let after) = operation {
                            do throws(RefundError) {
                                try operation.authorize(request.caller, op: operation.name)
                            } catch {
                                queue.push(dispatcher.failure(id: request.id, error), slot: true)
                                continue
                            }
                            guard !connection.isSubscribed else {
                                queue.push(
                                    dispatcher.failure(
                                        id: request.id,
                                        RefundError(.invalidState, "this connection is already subscribed")),
                                    slot: true)
                                continue
                            }
                            connection.markSubscribed()
                            queue.push(dispatcher.success(id: request.id, Subscribed(after: after)), slot: true)
                            group.addTask { await self.stream(events: after, to: queue) }
                            continue
                        }
                        if !batch.isEmpty, operation.orderKeys.contains(where: { key in batch.contains { $0.key == key } }) {
                            // An earlier request of this read is about the same order: it goes first.
                            await session.run(batch: batch, dispatcher: dispatcher, queue: queue, writer: answerWriter)
                            batch.removeAll()
                        }
                        session.run(operation, request: request, dispatcher: dispatcher, queue: queue)
                    }
                    await session.run(batch: batch, dispatcher: dispatcher, queue: queue, writer: answerWriter)
                }
            } catch {
                logger.debug("read ended: \(error)")
            }
            // Input is over (the client closed its side, a wrong token closed it, or shutdown): answer what was
            // read, then close.
            await queue.waitIdle()
            queue.close()
        }
    }

    /// Answers a `hello`: switches the connection to the protocol version asked for (one of
    /// ``RefundEngineVersion/protocolVersions``, else `invalid_field` and nothing changes) and says which it speaks.
    /// Requests read before it were decoded under the version before; those after it under the new one.
    private func hello(_ version: Int?, id: WireID, connection: ConnectionState) -> (bytes: ByteBuffer, refused: Bool) {
        if let version {
            guard RefundEngineVersion.protocolVersions.contains(version) else {
                let supported = RefundEngineVersion.protocolVersions.map(String.init).joined(separator: ", ")
                let error = RefundError(
                    .invalidField, "protocol_version: \(version) is not one this server speaks (\(supported))")
                return (dispatcher.failure(id: id, error), true)
            }
            connection.speak(protocolVersion: version)
        }
        return (dispatcher.success(id: id, PingResult(protocolVersion: connection.protocolVersion)), false)
    }

    /// Answers an `auth` request. False when the connection must close: its last allowed wrong token.
    ///
    /// An attempt from a peer that has sent wrong tokens first waits its turn (``AuthThrottle``), right token or
    /// not. A right token is then answered at once. A wrong one is logged and counted, and answered only after a
    /// delay that doubles with each wrong token on the connection (``Authentication/delay(failures:first:)``),
    /// during which nothing more is read from it; the `maximumAuthFailures`-th wrong token, or a wrong token on a
    /// connection that had authenticated, closes it.
    private func authenticate(
        _ token: String, id: WireID, connection: ConnectionState, registryID: ObjectIdentifier, failures: inout Int
    ) async -> Bool {
        let queue = connection.queue
        guard let expected = configuration.authToken else {
            // No token configured: `auth` is accepted and does nothing.
            queue.push(dispatcher.success(id: id, AuthResult(authenticated: true)), slot: true)
            return true
        }
        let turn = authThrottle.wait(peer: connection.peerKey)
        if turn > .zero { try? await Task.sleep(for: turn) }
        if Authentication.matches(token, expected) {
            if !connection.isAuthenticated {
                connection.markAuthenticated()
                state.withLock { $0.registry.authenticated(registryID) }
            }
            queue.push(dispatcher.success(id: id, AuthResult(authenticated: true)), slot: true)
            return true
        }
        failures += 1
        let closing = connection.isAuthenticated || failures >= configuration.maximumAuthFailures
        authThrottle.failed(peer: connection.peerKey)
        events.authFailed(peer: connection.peer, failures: failures, closing: closing)
        try? await Task.sleep(for: Authentication.delay(failures: failures, first: configuration.authFailureDelay))
        let message =
            closing
            ? "wrong token; closing the connection"
            : "wrong token (\(failures) of \(configuration.maximumAuthFailures) allowed on a connection)"
        queue.push(dispatcher.failure(id: id, RefundError(.unauthorized, message)), slot: true)
        return !closing
    }

    struct AuthResult: Encodable, Sendable { var authenticated: Bool }
    struct Subscribed: Encodable, Sendable {
        var subscribed = true
        var after: UInt64
    }

    /// `events.subscribe`: polls the outbox and writes `{"event":{..}}` lines until the connection closes.
    private func stream(events after: UInt64, to queue: ConnectionQueue) async {
        var cursor = after
        let encoder = JSONBytesEncoder()
        while !queue.isClosed && !Task.isCancelled {
            let events = await engine.events(after: cursor, limit: 1000)
            if events.isEmpty {
                try? await Task.sleep(for: configuration.eventPollInterval)
                continue
            }
            queue.push(contentsOf: events.compactMap { dispatcher.eventLine($0, encoder: encoder) })
            cursor = events.last?.sequence ?? cursor
            // Backpressure: the next batch is read only once this one is on the wire.
            await queue.waitFlushed()
        }
    }
}
