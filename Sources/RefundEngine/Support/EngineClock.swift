#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import RefundCore
import Synchronization

/// Where the engine reads the time. Injected, so tests of retries and cut-offs never sleep.
public protocol EngineClock: Sendable {
    func now() -> Timestamp
}

/// The wall clock (CLOCK_REALTIME), in milliseconds.
public struct SystemClock: EngineClock {
    public init() {}

    public func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(milliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }
}

/// A clock that moves only when told to: for tests and deterministic simulations.
public final class ManualClock: EngineClock {
    private let current: Mutex<Timestamp>

    public init(_ start: Timestamp = Timestamp(iso8601: "2026-11-22T10:00:00Z") ?? Timestamp(milliseconds: 0)) {
        current = Mutex(start)
    }

    public func now() -> Timestamp { current.withLock { $0 } }

    public func advance(milliseconds: Int64) {
        current.withLock { $0 = $0.adding(milliseconds: milliseconds) }
    }

    public func set(_ time: Timestamp) { current.withLock { $0 = time } }
}
