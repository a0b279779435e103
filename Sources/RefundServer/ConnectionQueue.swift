import NIOCore
import Synchronization

/// The outgoing side of one connection: responses and event lines waiting for the single writer, the count of
/// requests in flight (read, not yet answered on the wire), and when the read loop may take another request.
///
/// Backpressure: the read loop takes a slot (``acquire()``) before it handles each line, and waits while
/// - `limit` requests are in flight (a slot is given back only once its response is written to the socket), or
/// - the connection's output is backed up: the channel is not writable (NIO's pending writes passed its high
///   watermark; see ``setWritable(_:)``), or more than `maximumBytes` of responses wait to be written.
///
/// So a client that sends fast but reads slowly stops being read (TCP pushes back on it), and the server holds at
/// most `limit` requests and about `maximumBytes` of their responses per connection. Requests whose answers may be
/// large (lists) also take the connection's one large-answer token (``acquireLarge()``), held until that answer is
/// written: a client that pipelines a hundred `refund.list` requests and reads nothing costs one page, not a
/// hundred.
final class ConnectionQueue: Sendable {
    private enum Wait {
        /// Every request answered and everything written.
        case idle
        /// Everything queued so far written (event streams wait for this before reading more events).
        case flushed
    }

    private struct Item {
        var buffer: ByteBuffer
        /// It answers a request that holds a slot (released once it is written).
        var slot: Bool
        /// It answers the request holding the large-answer token (released once it is written).
        var large: Bool
    }

    private struct State {
        var items: [Item] = []
        var inFlight = 0
        /// Bytes of the queued items and of the batch being written.
        var pendingBytes = 0
        var writing = false
        var writingSlots = 0
        var writingBytes = 0
        var writingLarge = false
        var writable = true
        var closed = false
        /// The large-answer token is held (by a request running, or by its answer not yet written).
        var largeHeld = false
        var largeWaiters: [CheckedContinuation<Bool, Never>] = []
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

        func outputBackedUp(maximumBytes: Int) -> Bool { !writable || pendingBytes >= maximumBytes }

        /// The output was backed up at the last check (so each time it backs up is reported once).
        var backedUp = false

        /// Whether the output has just become backed up (to report a pause).
        mutating func becameBackedUp(maximumBytes: Int) -> Bool {
            let now = outputBackedUp(maximumBytes: maximumBytes)
            defer { backedUp = now }
            return now && !backedUp
        }
    }

    let limit: Int
    /// Response bytes waiting to be written before the read loop stops taking requests.
    let maximumBytes: Int
    /// Most bytes handed to the channel in one write (at least one line), so NIO's own buffer stays near one batch.
    let batchBytes: Int
    /// Called each time the output backs up (the channel turns unwritable, or `maximumBytes` wait): the read loop
    /// takes no request until it drains.
    private let onPause: @Sendable () -> Void
    private let state = Mutex(State())

    init(limit: Int, maximumBytes: Int = 1 << 20, batchBytes: Int = 256 << 10, onPause: @escaping @Sendable () -> Void = {})
    {
        self.limit = max(1, limit)
        self.maximumBytes = max(1, maximumBytes)
        self.batchBytes = max(1, batchBytes)
        self.onPause = onPause
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Output is queued or being written (the client has not taken it yet).
    var hasPendingOutput: Bool { state.withLock { !$0.items.isEmpty || $0.writing } }

    /// Some request taken is still running (its answer is not queued yet).
    var isExecuting: Bool {
        state.withLock { s in
            let answered = s.items.reduce(0) { $0 + ($1.slot ? 1 : 0) } + s.writingSlots
            return s.inFlight > answered
        }
    }

    /// Response bytes queued or being written.
    var pendingBytes: Int { state.withLock { $0.pendingBytes } }

    /// Takes a slot for one request; suspends while `limit` are in flight or the output is backed up. False once
    /// the connection is closing.
    func acquire() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer: Bool? = state.withLock { s in
                    if s.closed { return false }
                    if s.inFlight < limit && !s.outputBackedUp(maximumBytes: maximumBytes) {
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

    /// Takes a slot for one request if one is free now (no suspension): the read loop's fast path. False when
    /// `limit` are in flight, the output is backed up, or the connection is closing: then ``acquire()``.
    func tryAcquire() -> Bool {
        state.withLock { s in
            guard !s.closed, s.inFlight < limit, !s.outputBackedUp(maximumBytes: maximumBytes) else { return false }
            s.inFlight += 1
            return true
        }
    }

    /// Takes the connection's large-answer token; suspends while another request holds it (it is running, or its
    /// answer is not written yet). False once the connection is closing. The answer is pushed with `large: true`.
    func acquireLarge() async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let answer: Bool? = state.withLock { s in
                if s.closed { return false }
                if !s.largeHeld {
                    s.largeHeld = true
                    return true
                }
                s.largeWaiters.append(continuation)
                return nil
            }
            if let answer { continuation.resume(returning: answer) }
        }
    }

    /// The channel's writability changed (NIO's pending writes crossed its high or low watermark).
    func setWritable(_ writable: Bool) {
        let (acquirer, ready, paused) = state.withLock { s in
            s.writable = writable
            let paused = s.becameBackedUp(maximumBytes: maximumBytes)
            let (acquirer, ready) = takeAcquirer(&s)
            return (acquirer, ready, paused)
        }
        if paused { onPause() }
        acquirer?.resume(returning: true)
        for continuation in ready { continuation.resume() }
    }

    /// Queues a line for the writer. `slot`: it answers a request that holds a slot; `large`: it answers the
    /// request holding the large-answer token.
    func push(_ buffer: ByteBuffer, slot: Bool, large: Bool = false) {
        let (writer, nextLarge, paused):
            (CheckedContinuation<Void, Never>?, CheckedContinuation<Bool, Never>?, Bool) = state.withLock { s in
                if s.closed {
                    // The writer is gone: the slot is free, nobody will write this.
                    if slot { s.inFlight -= 1 }
                    return (nil, large ? passLarge(&s) : nil, false)
                }
                s.items.append(Item(buffer: buffer, slot: slot, large: large))
                s.pendingBytes += buffer.readableBytes
                let w = s.writer
                s.writer = nil
                return (w, nil, s.becameBackedUp(maximumBytes: maximumBytes))
            }
        if paused { onPause() }
        writer?.resume()
        nextLarge?.resume(returning: true)
    }

    /// Queues the answers of a batch of requests, each holding a slot, in one go (one wake of the writer) — or,
    /// when nothing is queued or being written, hands them straight back to be written by the caller
    /// (``Direct``): the common case of a connection that waits for its answers, where waking the writer task
    /// only to hand the bytes to the event loop cost a task switch per request. The caller then writes them and
    /// calls ``written()`` once they are handed to the channel, exactly as the writer does.
    func push(answers buffers: [ByteBuffer]) -> Direct? {
        guard !buffers.isEmpty else { return nil }
        let (writer, paused, direct): (CheckedContinuation<Void, Never>?, Bool, Direct?) = state.withLock { s in
            if s.closed {
                // The writer is gone: the slots are free, nobody will write these.
                s.inFlight -= buffers.count
                return (nil, false, nil)
            }
            var bytes = 0
            for buffer in buffers { bytes += buffer.readableBytes }
            if s.items.isEmpty && !s.writing && s.writable {
                s.writing = true
                s.writingSlots = buffers.count
                s.writingBytes = bytes
                s.pendingBytes += bytes
                return (nil, false, Direct(buffers: buffers, bytes: bytes))
            }
            for buffer in buffers { s.items.append(Item(buffer: buffer, slot: true, large: false)) }
            s.pendingBytes += bytes
            let w = s.writer
            s.writer = nil
            return (w, s.becameBackedUp(maximumBytes: maximumBytes), nil)
        }
        if paused { onPause() }
        writer?.resume()
        return direct
    }

    /// Answers to write now, by whoever pushed them (``push(answers:)``); ``written()`` once they are written.
    struct Direct: Sendable {
        var buffers: [ByteBuffer]
        var bytes: Int
    }

    /// Queues lines that hold no slot (event lines).
    func push(contentsOf buffers: [ByteBuffer]) {
        let (writer, paused): (CheckedContinuation<Void, Never>?, Bool) = state.withLock { s in
            if s.closed { return (nil, false) }
            for buffer in buffers {
                s.items.append(Item(buffer: buffer, slot: false, large: false))
                s.pendingBytes += buffer.readableBytes
            }
            let w = s.writer
            s.writer = nil
            return (w, s.becameBackedUp(maximumBytes: maximumBytes))
        }
        if paused { onPause() }
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

    /// For the writer: what is queued, at most about `batchBytes` (at least one line), or nil once closed and
    /// drained.
    func nextBatch() async -> [ByteBuffer]? {
        while true {
            let batch: [ByteBuffer]?? = state.withLock { s in
                // Not while answers are being written directly (``push(answers:)``): ``written()`` wakes this.
                if !s.items.isEmpty && !s.writing {
                    var taken = 0
                    var bytes = 0
                    var slots = 0
                    var large = false
                    while taken < s.items.count && (taken == 0 || bytes + s.items[taken].buffer.readableBytes <= batchBytes) {
                        bytes += s.items[taken].buffer.readableBytes
                        if s.items[taken].slot { slots += 1 }
                        if s.items[taken].large { large = true }
                        taken += 1
                    }
                    let batch = s.items[..<taken].map(\.buffer)
                    s.items.removeFirst(taken)
                    s.writing = true
                    s.writingSlots = slots
                    s.writingBytes = bytes
                    s.writingLarge = large
                    return .some(batch)
                }
                return s.closed ? .some(nil) : nil
            }
            if let batch { return batch }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s in
                        if (!s.items.isEmpty && !s.writing) || s.closed { return true }
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

    /// For the writer (or a direct write): the last batch is handed to the channel; its slots (and the
    /// large-answer token, if it carried that answer) are free.
    func written() {
        let (acquirer, ready, nextLarge, writer) = state.withLock { s in
            s.writing = false
            // Answers queued while a direct write was out: the writer takes them now.
            let writer = s.items.isEmpty ? nil : s.writer
            if writer != nil { s.writer = nil }
            s.inFlight -= s.writingSlots
            s.pendingBytes -= s.writingBytes
            s.writingSlots = 0
            s.writingBytes = 0
            let large = s.writingLarge ? passLarge(&s) : nil
            s.writingLarge = false
            _ = s.becameBackedUp(maximumBytes: maximumBytes)  // draining: never a new pause
            let (acquirer, ready) = takeAcquirer(&s)
            return (acquirer, ready, large, writer)
        }
        acquirer?.resume(returning: true)
        nextLarge?.resume(returning: true)
        writer?.resume()
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
        let (acquirer, writer, waiters, largeWaiters) = state.withLock { s in
            s.closed = true
            let a = s.acquirer
            let w = s.writer
            let ws = s.waiters.map(\.1)
            let ls = s.largeWaiters
            s.acquirer = nil
            s.writer = nil
            s.waiters = []
            s.largeWaiters = []
            return (a, w, ws, ls)
        }
        acquirer?.resume(returning: false)
        writer?.resume()
        for continuation in waiters { continuation.resume() }
        for continuation in largeWaiters { continuation.resume(returning: false) }
    }

    private func takeAcquirer(_ s: inout State) -> (CheckedContinuation<Bool, Never>?, [CheckedContinuation<Void, Never>]) {
        var acquirer: CheckedContinuation<Bool, Never>?
        if let waiting = s.acquirer, s.inFlight < limit, !s.outputBackedUp(maximumBytes: maximumBytes) {
            s.inFlight += 1
            s.acquirer = nil
            acquirer = waiting
        }
        return (acquirer, s.ready())
    }

    /// The large-answer token passes to the next waiter (returned, to resume outside the lock), or is freed.
    private func passLarge(_ s: inout State) -> CheckedContinuation<Bool, Never>? {
        guard !s.largeWaiters.isEmpty else {
            s.largeHeld = false
            return nil
        }
        return s.largeWaiters.removeFirst()
    }
}
