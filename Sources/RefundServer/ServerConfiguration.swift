/// How the server listens and what it allows. The defaults are what `refundd` uses; docs/operations.md ("Running
/// it on a network") says why.
public struct ServerConfiguration: Sendable {
    /// TCP host (nil: no TCP listener).
    public var host: String?
    /// TCP port; 0 picks a free one (see ``RefundServer/run(onListening:)``).
    public var port: Int
    /// A Unix domain socket path (nil: none). An existing socket file there is replaced.
    public var unixSocketPath: String?
    /// Longest accepted request line in bytes; longer lines are answered `line_too_long` and discarded.
    public var maximumLineBytes: Int
    /// Connections beyond this are answered `too_many_connections` and closed.
    public var maximumConnections: Int
    /// Requests in flight per connection before the server stops reading from it.
    public var maximumInFlightPerConnection: Int
    /// When set, the first request of every connection must be `{"op":"auth","token":..}`. At least
    /// ``minimumTokenBytes`` bytes (``validate()``).
    public var authToken: String?
    /// With a token: a connection not authenticated this long after it was accepted is closed (`auth_timeout`).
    /// Nil: no deadline (not advised: idle strangers then hold their slots until the idle timeout).
    public var authTimeout: Duration?
    /// A connection with nothing read, nothing written, no request running and no event subscription for this long
    /// is closed (`idle_timeout`), as is one whose responses have not been read for this long. Nil: never.
    public var idleTimeout: Duration?
    /// With a token: slots that only authenticated connections can hold. At most `maximumConnections − authReserve`
    /// connections (at least 1) may be unauthenticated at once; a new one beyond that closes the oldest
    /// unauthenticated one, so a client with the token can always get in.
    public var authReserve: Int
    /// Wrong tokens a connection may send; the last of them closes it.
    public var maximumAuthFailures: Int
    /// The first wrong token on a connection is answered after this; each later one after twice the previous delay.
    public var authFailureDelay: Duration
    /// Server-wide, `auth` attempts from peers that have sent wrong tokens are taken at most this many a second
    /// (each also waits its peer's own delay); peers without wrong tokens are never delayed.
    public var authFailuresPerSecond: Int
    /// Per connection: response bytes waiting to be written before the server stops reading from it.
    public var maximumOutboundBytes: Int
    /// How often an `events.subscribe` stream looks for new outbox events.
    public var eventPollInterval: Duration
    /// After ``RefundServer/shutdown()``, connections still open this long later (a client that does not read
    /// its responses) are closed hard.
    public var shutdownGracePeriod: Duration

    /// The shortest auth token accepted, in bytes.
    public static let minimumTokenBytes = Authentication.minimumTokenBytes

    public init(
        host: String? = "127.0.0.1", port: Int = 7654, unixSocketPath: String? = nil, maximumLineBytes: Int = 1 << 20,
        maximumConnections: Int = 1024, maximumInFlightPerConnection: Int = 128, authToken: String? = nil,
        authTimeout: Duration? = .seconds(10), idleTimeout: Duration? = .seconds(300), authReserve: Int = 16,
        maximumAuthFailures: Int = 3, authFailureDelay: Duration = .seconds(1), authFailuresPerSecond: Int = 20,
        maximumOutboundBytes: Int = 1 << 20, eventPollInterval: Duration = .milliseconds(50),
        shutdownGracePeriod: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.unixSocketPath = unixSocketPath
        self.maximumLineBytes = maximumLineBytes
        self.maximumConnections = maximumConnections
        self.maximumInFlightPerConnection = maximumInFlightPerConnection
        self.authToken = authToken
        self.authTimeout = authTimeout
        self.idleTimeout = idleTimeout
        self.authReserve = authReserve
        self.maximumAuthFailures = maximumAuthFailures
        self.authFailureDelay = authFailureDelay
        self.authFailuresPerSecond = authFailuresPerSecond
        self.maximumOutboundBytes = maximumOutboundBytes
        self.eventPollInterval = eventPollInterval
        self.shutdownGracePeriod = shutdownGracePeriod
    }

    /// Whether `host` only accepts connections from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// How many connections may be unauthenticated at once (nil without a token).
    var unauthenticatedLimit: Int? {
        authToken == nil ? nil : max(1, maximumConnections - max(0, authReserve))
    }

    /// Refuses a configuration that leaves the door open: an empty or short token, or a non-loopback host without
    /// one. ``RefundServer/run(onListening:)`` checks it too.
    public func validate() throws(ServerError) {
        if let authToken, let problem = Authentication.problem(with: authToken) {
            throw ServerError(message: problem)
        }
        if let host, !Self.isLoopback(host), authToken == nil {
            throw ServerError(message: "listening on \(host) (not loopback) requires an auth token")
        }
    }
}
