import NIOCore
import RefundCore
import RefundEngine
import Synchronization

/// How one connection's requests run: the hot ones of each read together, by the read loop
/// (``run(batch:dispatcher:queue:writer:)``), the others each in its own task; those about the same order one after another; and those whose answers may be
/// large (lists) one at a time per connection, each only once the previous large answer is written
/// (``ConnectionQueue/acquireLarge()``).
struct ConnectionSession {
    /// Per order: the last request about it, so the next one about it waits for it (order preserved per order).
    private var tails: [String: Step] = [:]

    final class Step: Sendable {
        let done = Atomic<Bool>(false)
        let task: Mutex<Task<Void, Never>?> = Mutex(nil)
    }

    /// Starts the request in its own task; requests about the same order run one after another.
    mutating func run(_ operation: Operation, request: Request, dispatcher: Dispatcher, queue: ConnectionQueue) {
        let id = request.id
        let caller = request.caller
        let actorID = request.actorID
        let keys = operation.orderKeys
        let large = operation.mayAnswerLarge
        let previous = predecessors(of: keys)
        let step = Step()
        let task = Task {
            defer { step.done.store(true, ordering: .releasing) }
            for task in previous { await task.value }
            if large, !(await queue.acquireLarge()) {
                queue.release()  // the connection is closing: nobody will read an answer
                return
            }
            let line: ByteBuffer
            let metrics = dispatcher.metrics
            metrics.inFlight.increment()
            let started = ContinuousClock.now
            do throws(RefundError) {
                let result = try await dispatcher.execute(operation, caller: caller, actorID: actorID)
                line = dispatcher.success(id: id, result)
                metrics.answered(op: operation.name, code: nil, since: started)
            } catch {
                line = dispatcher.failure(id: id, error)
                metrics.answered(op: operation.name, code: error.code, since: started)
            }
            metrics.inFlight.decrement()
            queue.push(line, slot: true, large: large)
        }
        register(step, task, keys: keys, limit: queue.limit)
    }

    /// One request of a read's batch: its id, what the engine is to do, the op name (for metrics) and its order.
    struct BatchedRequest: Sendable {
        var id: WireID
        var request: BatchRequest
        var op: String
        var key: String?
        /// `order.get`'s `include`: render the compact view with these parts (nil: the full view).
        var include: Set<OrderViewPart>? = nil
    }

    /// Runs the hot requests of one read (``Dispatcher/batchable(_:caller:actorID:)``) with one engine call
    /// (``Engine/execute(_:)``: one hop per partition), after the earlier requests about the same orders; their
    /// answers go out together, in the order read. The read loop runs it itself, to its end, rather than in a task
    /// of its own: a task per read cost a third of the daemon's CPU for a client that waits for each answer, and
    /// lines that arrive meanwhile simply make the next batch larger (the gateway then gets them in one call).
    mutating func run(batch: [BatchedRequest], dispatcher: Dispatcher, queue: ConnectionQueue, writer: AnswerWriter) async {
        guard !batch.isEmpty else { return }
        var keys: Set<String> = []
        for item in batch { if let key = item.key { keys.insert(key) } }
        for task in predecessors(of: keys) { await task.value }
        await Self.answer(batch, dispatcher: dispatcher, queue: queue, writer: writer)
    }

    private static func answer(
        _ batch: [BatchedRequest], dispatcher: Dispatcher, queue: ConnectionQueue, writer: AnswerWriter
    ) async {
        let metrics = dispatcher.metrics
        metrics.inFlight.increment(by: Double(batch.count))
        let started = ContinuousClock.now
        let answers = await dispatcher.engine.execute(batch.map(\.request))
        var lines: [ByteBuffer] = []
        lines.reserveCapacity(batch.count)
        for (item, answer) in zip(batch, answers) {
            switch answer {
            case .refund(let refund):
                lines.append(dispatcher.success(id: item.id, refund))
                metrics.answered(op: item.op, code: nil, since: started)
            case .order(let view):
                if let include = item.include {
                    lines.append(dispatcher.success(id: item.id, CompactOrderView(view: view, include: include)))
                } else {
                    lines.append(dispatcher.success(id: item.id, view))
                }
                metrics.answered(op: item.op, code: nil, since: started)
            case .failure(let error):
                lines.append(dispatcher.failure(id: item.id, error))
                metrics.answered(op: item.op, code: error.code, since: started)
            }
        }
        metrics.inFlight.decrement(by: Double(batch.count))
        if let direct = queue.push(answers: lines) { writer.write(direct) }
    }

    /// The tasks still to finish before a request about `keys` may start (each key's last request).
    private func predecessors<Keys: Sequence<String>>(of keys: Keys) -> [Task<Void, Never>] {
        var previous: [Task<Void, Never>] = []
        for key in keys {
            guard let task = tails[key]?.task.withLock({ $0 }) else { continue }
            if !previous.contains(task) { previous.append(task) }
        }
        return previous
    }

    /// Makes `step` (running `task`) the last request about each of `keys`.
    private mutating func register<Keys: Sequence<String>>(_ step: Step, _ task: Task<Void, Never>, keys: Keys, limit: Int) {
        var any = false
        for key in keys {
            if !any {
                step.task.withLock { $0 = task }
                any = true
            }
            tails[key] = step
        }
        guard any, tails.count > 2 * limit + 16 else { return }
        tails = tails.filter { !$0.value.done.load(ordering: .acquiring) }
    }
}
