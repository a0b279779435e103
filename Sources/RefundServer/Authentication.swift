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

/// Throttles guessing across connections. Delaying a wrong token's answer alone does not slow a guesser down: a
/// right token is answered at once, so a guesser that opens a new connection for every guess (or uses many at a
/// time) knows a guess failed as soon as no instant answer comes. So an `auth` attempt from a peer that has sent
/// wrong tokens (same IPv4 address, same IPv6 /64; all Unix-socket clients are one peer) waits before its token is
/// even compared, whether it is right or not:
///
/// - its peer's own delay: after the peer's n-th wrong token, `firstDelay × 2^(n−1)` (at most a minute) from that
///   wrong token;
/// - and its turn server-wide: such attempts are taken at most `perSecond` a second, in order.
///
/// A peer that has sent no wrong token (in the last ``forgetAfter``) is never delayed, so a stranger's guessing
/// does not slow the clients that have the token. The table holds at most ``maximumPeers`` peers (the stalest are
/// forgotten first).
final class AuthThrottle: Sendable {
    static let forgetAfter: Duration = .seconds(600)
    static let maximumPeers = 10_000

    private struct Peer {
        var failures: Int
        var nextAttempt: ContinuousClock.Instant
        var lastFailure: ContinuousClock.Instant
    }

    private struct State {
        var peers: [String: Peer] = [:]
        var nextTurn: ContinuousClock.Instant = .now
    }

    private let firstDelay: Duration
    private let spacing: Duration
    private let state = Mutex(State())

    init(firstDelay: Duration, perSecond: Int) {
        self.firstDelay = firstDelay
        self.spacing = .seconds(1) / max(1, perSecond)
    }

    /// How long an `auth` attempt from `peer` waits before its token is compared (zero for a peer without wrong
    /// tokens).
    func wait(peer: String) -> Duration {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard let entry = s.peers[peer], now - entry.lastFailure < Self.forgetAfter else { return .zero }
            let turn = max(now, entry.nextAttempt, s.nextTurn)
            s.nextTurn = turn + spacing
            return turn - now
        }
    }

    /// A wrong token from `peer`.
    func failed(peer: String) {
        let now = ContinuousClock.now
        state.withLock { s in
            var entry = s.peers[peer] ?? Peer(failures: 0, nextAttempt: now, lastFailure: now)
            if now - entry.lastFailure >= Self.forgetAfter { entry.failures = 0 }
            entry.failures += 1
            entry.lastFailure = now
            entry.nextAttempt = now + Authentication.delay(failures: entry.failures, first: firstDelay)
            s.peers[peer] = entry
            if s.peers.count > Self.maximumPeers {
                s.peers = s.peers.filter { now - $0.value.lastFailure < Self.forgetAfter }
                if s.peers.count > Self.maximumPeers {
                    let stalest = s.peers.sorted { $0.value.lastFailure < $1.value.lastFailure }
                    for (key, _) in stalest.prefix(s.peers.count - Self.maximumPeers * 9 / 10) { s.peers[key] = nil }
                }
            }
        }
    }
}
