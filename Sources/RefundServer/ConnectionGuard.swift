import NIOCore
import RefundCore

/// The event-loop side of a connection's limits, first in its pipeline:
///
/// - **auth deadline**: with a token configured, a connection not authenticated `authTimeout` after it was
///   accepted gets `auth_timeout` and is closed;
/// - **idle timeout**: a connection with nothing read and nothing written for `idleTimeout`, no request running and
///   no event subscription gets `idle_timeout` and is closed; so is one whose responses have not moved for that
///   long (a client that stopped reading), whatever it is waiting for;
/// - **writability**: tells the connection's ``ConnectionQueue`` when NIO's pending writes cross their watermarks,
///   so the read loop stops taking requests while the output is backed up;
/// - **eviction**: ``Close/evicted(unauthenticatedLimit:)``, fired through the pipeline by the server, closes the
///   connection with `too_many_connections` (see ``ConnectionRegistry``).
///
/// Timers are scheduled on the channel's event loop and cancelled when it closes (as NIO's `IdleStateHandler`).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Closes the connection from outside its event loop (`channel.pipeline.fireUserInboundEventTriggered`).
    enum Close: Sendable {
        case evicted(unauthenticatedLimit: Int)
    }

    private let state: ConnectionState
    private let authTimeout: Duration?
    private let idleTimeout: Duration?
    private let events: ServerEvents
    private let dispatcher: Dispatcher
    private var authCheck: Scheduled<Void>?
    private var idleCheck: Scheduled<Void>?
    private var started = false
    private var closing = false

    init(state: ConnectionState, authTimeout: Duration?, idleTimeout: Duration?, events: ServerEvents, dispatcher: Dispatcher) {
        self.state = state
        self.authTimeout = authTimeout
        self.idleTimeout = idleTimeout
        self.events = events
        self.dispatcher = dispatcher
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { stop() }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        // Nothing can be written any more: wake the read loop if it waits for the output to drain (it may wait
        // on writability with nothing left to write, which no write failure would end), the writer and waiters.
        state.queue.close()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        state.touch()
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        state.queue.setWritable(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let close = event as? Close else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch close {
        case .evicted(let limit):
            self.close(
                context,
                RefundError(
                    .tooManyConnections,
                    "closed to make room: at most \(limit) connections may be unauthenticated; authenticate first"))
        }
    }

    // MARK: Timers

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        let loop = context.eventLoop.assumeIsolated()
        if let authTimeout, !state.isAuthenticated {
            authCheck = loop.scheduleTask(in: TimeAmount(authTimeout)) { [self] in
                guard !state.isAuthenticated else { return }
                events.authTimedOut(peer: state.peer, after: authTimeout)
                close(
                    context,
                    RefundError(.authTimeout, "not authenticated within \(authTimeout.secondsText); send {\"op\":\"auth\",\"token\":..} first"))
            }
        }
        if let idleTimeout { scheduleIdleCheck(context, at: state.lastActive + TimeAmount(idleTimeout)) }
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            checkIdle(context)
        }
    }

    private func checkIdle(_ context: ChannelHandlerContext) {
        guard let idleTimeout, !closing, context.channel.isActive else { return }
        let timeout = TimeAmount(idleTimeout)
        let now = NIODeadline.now()
        let last = state.lastActive
        if now - last < timeout {
            scheduleIdleCheck(context, at: last + timeout)
            return
        }
        // Nothing read and nothing handed to the socket for the whole timeout.
        if state.queue.hasPendingOutput {
            events.idleTimedOut(peer: state.peer, after: idleTimeout, stalled: true)
            close(context, RefundError(.idleTimeout, "none of the responses was read for \(idleTimeout.secondsText); closing"))
        } else if state.queue.isExecuting || state.isSubscribed {
            scheduleIdleCheck(context, at: now + timeout)  // waiting for the engine, or for events: not idle
        } else {
            events.idleTimedOut(peer: state.peer, after: idleTimeout, stalled: false)
            close(context, RefundError(.idleTimeout, "idle for \(idleTimeout.secondsText); closing"))
        }
    }

    private func stop() {
        authCheck?.cancel()
        idleCheck?.cancel()
        authCheck = nil
        idleCheck = nil
    }

    /// Writes the error line after whatever is already written and closes. A client that reads nothing may never
    /// see it; the close is what matters.
    private func close(_ context: ChannelHandlerContext, _ error: RefundError) {
        guard !closing else { return }
        closing = true
        stop()
        context.writeAndFlush(wrapOutboundOut(dispatcher.failure(id: .null, error)), promise: nil)
        context.close(promise: nil)
    }
}
