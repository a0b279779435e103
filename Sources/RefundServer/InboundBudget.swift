import NIOCore
import Synchronization

/// Bounds the bytes of request lines read from a connection and not yet taken by its read loop.
///
/// The async channel in front of the read loop buffers up to 64 lines before it stops reading the socket, and
/// lines may be `--max-line-bytes` (1 MiB) long: a client whose reading is paused (its output backed up, or a wrong
/// token's delay) could otherwise make the server hold 64 MiB of lines per connection, authenticated or not. With
/// the budget the server stops reading once `limit` bytes of lines wait, and resumes as the read loop takes them:
/// at most `limit`, plus one read's worth of lines and one partial line, per connection.
final class InboundBudget: Sendable {
    /// Fired through the pipeline when the read loop has taken enough for reading to resume.
    struct Resume: Sendable {}

    let limit: Int
    private let waiting = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Bytes of lines read and not yet taken.
    var bytes: Int { waiting.load(ordering: .acquiring) }

    /// A line was read (called on the event loop).
    func read(_ count: Int) {
        waiting.add(count, ordering: .acquiringAndReleasing)
    }

    /// The read loop took a line. True when this brought the waiting bytes below the limit, so a held read must be
    /// resumed (fire ``Resume`` through the channel's pipeline).
    func taken(_ count: Int) -> Bool {
        guard count > 0 else { return false }
        let after = waiting.subtract(count, ordering: .acquiringAndReleasing).newValue
        return after < limit && after + count >= limit
    }
}

extension InboundLine {
    /// What the line holds in memory.
    var byteCount: Int {
        switch self {
        case .line(let buffer): buffer.readableBytes
        case .tooLong: 0
        }
    }
}

/// What the read loop takes at once: every line one read of the socket produced (in the order sent).
typealias InboundBatch = [InboundLine]

/// Between the line splitter and the async channel: gathers the lines of one read into one ``InboundBatch`` (so
/// the read loop wakes once per read, not once per line, and can hand a read's requests to the engine as one
/// batch), counts their bytes, and holds the channel's `read()` while ``InboundBudget/limit`` bytes of lines wait
/// (as NIO's `BackPressureHandler` holds it while unwritable).
final class InboundBudgetHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = InboundLine
    typealias InboundOut = InboundBatch
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let budget: InboundBudget
    private var readHeld = false
    private var pending: InboundBatch = []

    init(budget: InboundBudget) {
        self.budget = budget
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        budget.read(line.byteCount)
        pending.append(line)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        passOn(context: context)
        context.fireChannelReadComplete()
    }

    /// Passes on the lines gathered so far as one batch.
    private func passOn(context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending.removeAll(keepingCapacity: true)
        context.fireChannelRead(wrapInboundOut(batch))
    }

    func channelInactive(context: ChannelHandlerContext) {
        passOn(context: context)
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if budget.bytes >= budget.limit {
            readHeld = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is InboundBudget.Resume else {
            // Input closed (half-close, EOF): the lines before it go first.
            passOn(context: context)
            context.fireUserInboundEventTriggered(event)
            return
        }
        if readHeld && budget.bytes < budget.limit {
            readHeld = false
            context.read()
        }
    }
}
