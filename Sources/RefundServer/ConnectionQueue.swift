import NIOCore
import Synchronization

/// The outgoing side of one connection: responses and event lines waiting for the single writer, and the count
/// of requests in flight (read, not yet answered on the wire).
///
/// Backpressure: the read loop takes a slot (``acquire()``) before it handles each line and suspends while
/// `limit` requests are in flight; a slot is given back only once its response has been written to the socket.
/// So a client that sends fast but reads slowly stops being read (TCP pushes back on it) and the server holds
/// at most `limit` requests and their responses per connection.
final class ConnectionQueue: Sendable {
    private enum Wait {
        /// Every request answered and everything written.
        case idle
        /// Everything queued so far written (event streams wait for this before reading more events).
        case flushed
    }

    private struct State {
        var items: [ByteBuffer] = []
        /// Slots held by the queued items (released once they are written).
        var itemSlots = 0
        var inFlight = 0
        var writing = false
        var writingSlots = 0
        var closed = false
        var acquirer: CheckedContinuation<Bool, Never>?
        var writer: CheckedContinuation<Void, Never>?
        var waiters: [(Wait, CheckedContinuation<Void, Never>)] = []

        func satisfied(_ wait: Wait) -> Bool {
            if closed { return true }
            switch wait {
            case .idle: return inFlight == 0 && items.isEmpty && !writing
            case .flushed: return items.isEmpty && !writing
            }
        }

        /// Continuations to resume now that the state changed.
        mutating func ready() -> [CheckedContinuation<Void, Never>] {
            guard !waiters.isEmpty else { return [] }
            var resumed: [CheckedContinuation<Void, Never>] = []
            var kept: [(Wait, CheckedContinuation<Void, Never>)] = []
            for (wait, continuation) in waiters {
                if satisfied(wait) { resumed.append(continuation) } else { kept.append((wait, continuation)) }
            }
            waiters = kept
            return resumed
        }
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Takes a slot for one request; suspends while `limit` are in flight. False once the connection is closing.
    func acquire() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer: Bool? = state.withLock { s in
                    if s.closed { return false }
                    if s.inFlight < limit {
                        s.inFlight += 1
                        return true
                    }
                    s.acquirer = continuation
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            close()
        }
    }

    /// Queues a line for the writer. `slot`: it answers a request that holds a slot.
    func push(_ buffer: ByteBuffer, slot: Bool) {
        let writer: CheckedContinuation<Void, Never>? = state.withLock { s in
            if s.closed {
                // The writer is gone: the slot is free, nobody will write this.
                if slot { s.inFlight -= 1 }
                return nil
            }
            s.items.append(buffer)
            if slot { s.itemSlots += 1 }
            let w = s.writer
            s.writer = nil
            return w
        }
        writer?.resume()
    }

    /// Queues lines that hold no slot (event lines).
    func push(contentsOf buffers: [ByteBuffer]) {
        let writer: CheckedContinuation<Void, Never>? = state.withLock { s in
            if s.closed { return nil }
            s.items += buffers
            let w = s.writer
            s.writer = nil
            return w
        }
        writer?.resume()
    }

    /// A request finished without a response line of its own (it gave its slot back).
    func release() {
        let (acquirer, ready) = state.withLock { s in
            s.inFlight -= 1
            return takeAcquirer(&s)
        }
        acquirer?.resume(returning: true)
        for continuation in ready { continuation.resume() }
    }

    /// For the writer: everything queued, or nil once closed and drained.
    func nextBatch() async -> [ByteBuffer]? {
        while true {
            let batch: [ByteBuffer]?? = state.withLock { s in
                if !s.items.isEmpty {
                    let items = s.items
                    s.items = []
                    s.writing = true
                    s.writingSlots = s.itemSlots
                    s.itemSlots = 0
                    return .some(items)
                }
                return s.closed ? .some(nil) : nil
            }
            if let batch { return batch }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s in
                        if !s.items.isEmpty || s.closed { return true }
                        s.writer = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                close()
            }
        }
    }

    /// For the writer: the last batch is on the wire; its slots are free.
    func written() {
        let (acquirer, ready) = state.withLock { s in
            s.writing = false
            s.inFlight -= s.writingSlots
            s.writingSlots = 0
            return takeAcquirer(&s)
        }
        acquirer?.resume(returning: true)
        for continuation in ready { continuation.resume() }
    }

    /// Waits until every request taken is answered and written (or the queue is closed).
    func waitIdle() async { await wait(.idle) }

    /// Waits until everything queued so far is written (or the queue is closed).
    func waitFlushed() async { await wait(.flushed) }

    private func wait(_ what: Wait) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if s.satisfied(what) { return true }
                s.waiters.append((what, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Closes the queue: the writer drains what is queued and stops; new pushes are dropped; every waiter wakes.
    func close() {
        let (acquirer, writer, waiters) = state.withLock { s in
            s.closed = true
            let a = s.acquirer
            let w = s.writer
            let ws = s.waiters.map(\.1)
            s.acquirer = nil
            s.writer = nil
            s.waiters = []
            return (a, w, ws)
        }
        acquirer?.resume(returning: false)
        writer?.resume()
        for continuation in waiters { continuation.resume() }
    }

    private func takeAcquirer(_ s: inout State) -> (CheckedContinuation<Bool, Never>?, [CheckedContinuation<Void, Never>]) {
        var acquirer: CheckedContinuation<Bool, Never>?
        if let waiting = s.acquirer, s.inFlight < limit {
            s.inFlight += 1
            s.acquirer = nil
            acquirer = waiting
        }
        return (acquirer, s.ready())
    }
}
