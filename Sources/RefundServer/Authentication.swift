import Synchronization

/// The `auth` op's rules: what a token must be, how a guess is compared, and how long a wrong one waits for its
/// answer (docs/protocol.md, "Auth").
enum Authentication {
    /// The shortest token accepted (bytes of UTF-8). 16 random bytes, hex-encoded as `openssl rand -hex 16` gives
    /// (32 characters), are far beyond guessing; a short one is not.
    static let minimumTokenBytes = 16

    /// Why `token` cannot be the server's token, or nil when it can.
    static func problem(with token: String) -> String? {
        if token.isEmpty { return "the auth token is empty: anyone could authenticate with \"\"" }
        if token.utf8.count < minimumTokenBytes {
            return "the auth token is \(token.utf8.count) bytes; it must be at least \(minimumTokenBytes) (e.g. openssl rand -hex 16)"
        }
        return nil
    }

    /// Compares without an early exit: the time taken depends only on the expected token's length, not on how much
    /// of the guess is right or how long the guess is.
    static func matches(_ guess: String, _ expected: String) -> Bool {
        let x = Array(guess.utf8)
        let y = Array(expected.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<y.count {
            let p = i < x.count ? x[i] : 0
            difference |= p ^ y[i]
        }
        return difference == 0
    }

    /// How long the `failures`-th wrong token on a connection waits before it is answered: `first`, then twice as
    /// long each time, at most a minute.
    static func delay(failures: Int, first: Duration) -> Duration {
        let doublings = min(max(failures - 1, 0), 16)
        return min(first * (1 << doublings), .seconds(60))
    }
}

/// Server-wide pacing of wrong-token answers: at most `perSecond` are answered per second, whatever the number of
/// connections guessing in parallel. A wrong token's answer waits for its own connection's delay and for its turn
/// here; a right token is never delayed. A connection still waiting when its auth deadline passes is closed
/// without learning anything.
final class AuthFailurePacer: Sendable {
    private let spacing: Duration
    private let next = Mutex<ContinuousClock.Instant>(.now)

    init(perSecond: Int) {
        spacing = .seconds(1) / max(1, perSecond)
    }

    /// How long to wait before answering a wrong token that must wait at least `minimum`.
    func wait(atLeast minimum: Duration) -> Duration {
        let now = ContinuousClock.now
        let turn = next.withLock { next in
            let turn = max(now + minimum, next)
            next = turn + spacing
            return turn
        }
        return turn - now
    }
}
