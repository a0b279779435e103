import NIOCore
import RefundCore
import Synchronization

/// What one connection's two sides share: the event-loop side (``ConnectionGuard``: deadlines, writability) and
/// the async side (the read loop, the writer, the event stream in `Server.swift`).
final class ConnectionState: Sendable {
    /// The outgoing side: responses waiting to be written, requests in flight.
    let queue: ConnectionQueue
    /// The incoming side: bytes of lines read and not yet taken by the read loop.
    let inbound = InboundBudget(limit: ConnectionState.inboundBudgetBytes)
    /// Where the connection comes from, for logs: `203.0.113.7:50412`, or `unix` for the Unix socket.
    let peer: String
    /// Lines waiting for the read loop, in bytes, before the server stops reading the socket (``InboundBudget``).
    static let inboundBudgetBytes = 256 << 10

    /// Who the peer is for auth throttling: its IPv4 address, its IPv6 /64, or `unix`.
    let peerKey: String
    private let authenticatedFlag: Atomic<Bool>
    private let subscribedFlag = Atomic<Bool>(false)
    private let protocolVersionValue = Atomic<Int>(RefundEngineVersion.protocolVersion)
    /// Uptime nanoseconds of the last bytes read or response batch handed to the channel.
    private let lastActivity = Atomic<UInt64>(NIODeadline.now().uptimeNanoseconds)

    init(queue: ConnectionQueue, address: SocketAddress?, authenticated: Bool) {
        self.queue = queue
        self.peer = Self.describe(address)
        self.peerKey = Self.key(address)
        self.authenticatedFlag = Atomic(authenticated)
    }

    /// The connection may run ops: it sent the right token, or the server has none.
    var isAuthenticated: Bool { authenticatedFlag.load(ordering: .acquiring) }
    func markAuthenticated() { authenticatedFlag.store(true, ordering: .releasing) }

    /// An `events.subscribe` stream runs on the connection (so it may be quiet for long without being idle).
    var isSubscribed: Bool { subscribedFlag.load(ordering: .acquiring) }
    func markSubscribed() { subscribedFlag.store(true, ordering: .releasing) }

    /// The protocol version the connection speaks (`hello`); it starts at ``RefundEngineVersion/protocolVersion``.
    var protocolVersion: Int { protocolVersionValue.load(ordering: .relaxed) }
    func speak(protocolVersion: Int) { protocolVersionValue.store(protocolVersion, ordering: .relaxed) }

    var lastActive: NIODeadline { NIODeadline.uptimeNanoseconds(lastActivity.load(ordering: .relaxed)) }
    func touch() { lastActivity.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed) }

    /// `203.0.113.7`, `2001:db8:0:1::/64`, `unix`: a guesser does not become someone else by changing port, or
    /// by moving within the /64 an IPv6 host is usually given.
    static func key(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        switch address {
        case .v4: return address.ipAddress ?? "v4"
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0.prefix(8)) }
            var groups: [String] = []
            for i in stride(from: 0, to: 8, by: 2) { groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16)) }
            return groups.joined(separator: ":") + "::/64"
        case .unixDomainSocket: return "unix"
        }
    }

    /// `203.0.113.7:50412`, `[2001:db8::1]:50412`, `unix`.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        switch address {
        case .v4(let v4): return "\(address.ipAddress ?? "\(v4)"):\(address.port ?? 0)"
        case .v6: return "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        case .unixDomainSocket: return "unix"
        }
    }
}
