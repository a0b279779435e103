import NIOCore
import RefundCore
import Synchronization

/// How one connection's requests run: each in its own task, those about the same order one after another, and
/// those whose answers may be large (lists) one at a time per connection, each only once the previous large answer
/// is written (``ConnectionQueue/acquireLarge()``).
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
        let key = operation.orderKey
        let large = operation.mayAnswerLarge
        let previous = key.flatMap { tails[$0] }?.task.withLock { $0 }
        let step = Step()
        let task = Task {
            defer { step.done.store(true, ordering: .releasing) }
            if let previous { await previous.value }
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
        guard let key else { return }
        step.task.withLock { $0 = task }
        tails[key] = step
        if tails.count > 2 * queue.limit + 16 {
            tails = tails.filter { !$0.value.done.load(ordering: .acquiring) }
        }
    }
}
