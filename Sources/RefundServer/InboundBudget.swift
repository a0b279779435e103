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

/// Between the line splitter and the async channel: counts the lines passed on, and holds the channel's `read()`
/// while ``InboundBudget/limit`` bytes of them wait (as NIO's `BackPressureHandler` holds it while unwritable).
final class InboundBudgetHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = InboundLine
    typealias InboundOut = InboundLine
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let budget: InboundBudget
    private var readHeld = false

    init(budget: InboundBudget) {
        self.budget = budget
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        budget.read(unwrapInboundIn(data).byteCount)
        context.fireChannelRead(data)
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
            context.fireUserInboundEventTriggered(event)
            return
        }
        if readHeld && budget.bytes < budget.limit {
            readHeld = false
            context.read()
        }
    }
}
