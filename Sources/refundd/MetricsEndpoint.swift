import CoreMetrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import RefundEngine
import Synchronization

/// The daemon's state as the health checks see it: recovering until `Engine.open` returns, then the engine.
final class Readiness: Sendable {
    private let engine = Mutex<Engine?>(nil)

    func ready(_ opened: Engine) { engine.withLock { $0 = opened } }
    var current: Engine? { engine.withLock { $0 } }
}

/// One answer of the metrics endpoint.
struct HTTPAnswer: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]

    static func text(_ status: HTTPResponseStatus, _ text: String) -> HTTPAnswer {
        HTTPAnswer(status: status, contentType: "text/plain; charset=utf-8", body: Array((text + "\n").utf8))
    }
}

/// `GET /metrics` (Prometheus text), `GET /healthz` (alive: 503 once fail-stopped, since only a restart helps),
/// `GET /readyz` (200 only after recovery and while not fail-stopped). The reason is in the body.
struct MetricsRoutes: Sendable {
    let registry: PrometheusCollectorRegistry
    let readiness: Readiness

    func answer(_ method: HTTPMethod, _ uri: String) async -> HTTPAnswer {
        guard method == .GET || method == .HEAD else { return .text(.methodNotAllowed, "only GET") }
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        let engine = readiness.current
        switch path {
        case "/metrics":
            await engine?.refreshMetrics()
            return HTTPAnswer(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToBuffer())
        case "/healthz":
            if let failure = engine?.failure { return .text(.serviceUnavailable, "stopped: \(failure.message)") }
            return .text(.ok, engine == nil ? "alive: recovering" : "alive")
        case "/readyz":
            guard let engine else { return .text(.serviceUnavailable, "not ready: recovering the data directory") }
            let health = engine.health()
            return health.ready
                ? .text(.ok, "ready") : .text(.serviceUnavailable, "not ready: \(health.state): \(health.reason ?? "")")
        default:
            return .text(.notFound, "no such path; try /metrics, /healthz or /readyz")
        }
    }
}

/// HTTP/1 on one connection: each complete request is answered in order (requests are read one at a time, so
/// a pipelining client gets its answers in order).
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: MetricsRoutes
    private var head: HTTPRequestHead?

    init(routes: MetricsRoutes) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // no request here has a body
        case .end:
            guard let head else { return }
            self.head = nil
            let routes = self.routes
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask { await routes.answer(head.method, head.uri) }
                .assumeIsolated().whenSuccess { answer in
                    let (handler, context) = bound.value
                    handler.respond(answer, to: head, context: context)
                }
        }
    }

    private func respond(_ answer: HTTPAnswer, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: answer.contentType)
        headers.add(name: "Content-Length", value: String(answer.body.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: answer.status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: answer.body.count)
            buffer.writeBytes(answer.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if !keepAlive {
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

enum MetricsEndpoint {
    /// Binds the endpoint; returns the channel (its local address has the port when 0 was asked).
    static func start(host: String, port: Int, group: any EventLoopGroup, routes: MetricsRoutes) async throws
        -> any Channel
    {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(routes: routes))
                }
            }
            .bind(host: host, port: port).get()
    }
}
