import Synchronization

/// An async mutual-exclusion lock per key (a customer id). Used only off the hot path: refunds of wallet
/// top-ups, which must read a balance spread over partitions and then debit it.
final class KeyedAsyncLock: Sendable {
    struct Held: Sendable {
        let owner: KeyedAsyncLock
        let key: String
        func release() async { owner.release(key) }
    }

    private let state = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func acquire(_ key: String) async -> Held {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let runNow: Bool = state.withLock { waiters in
                if waiters[key] == nil {
                    waiters[key] = []
                    return true
                }
                waiters[key]?.append(continuation)
                return false
            }
            if runNow { continuation.resume() }
        }
        return Held(owner: self, key: key)
    }

    private func release(_ key: String) {
        let next: CheckedContinuation<Void, Never>? = state.withLock { waiters in
            guard var queue = waiters[key], !queue.isEmpty else {
                waiters[key] = nil
                return nil
            }
            let first = queue.removeFirst()
            waiters[key] = queue
            return first
        }
        next?.resume()
    }
}
