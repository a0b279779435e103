/// The open connections and who may have a slot: at most `limit` connections, and with a token configured at most
/// `unauthenticatedLimit` of them not yet authenticated.
///
/// When a new connection would make one unauthenticated connection too many, the **oldest** unauthenticated one is
/// closed to make room. So idle or slow connections that never authenticate cannot lock a client with the token
/// out: it connects (evicting the oldest stranger), authenticates at once, and keeps its slot. The other slots
/// (`limit − unauthenticatedLimit`, the reserve) can only ever be held by authenticated connections. Without a
/// token every connection counts as authenticated and only `limit` applies.
struct ConnectionRegistry<Connection> {
    let limit: Int
    /// Nil without a token.
    let unauthenticatedLimit: Int?

    enum Admission {
        /// In; `evicting`: an unauthenticated connection to close to make room for it.
        case admitted(evicting: Evicted?)
        /// Every slot is taken (and at least the reserve by authenticated connections).
        case full
    }

    struct Evicted {
        var connection: Connection
        var peer: String
    }

    private struct Entry {
        var connection: Connection
        var peer: String
        /// Its place in the order of arrival while unauthenticated (nil once authenticated).
        var unauthenticatedSince: UInt64?
    }

    private var entries: [ObjectIdentifier: Entry] = [:]
    private var unauthenticatedCount = 0
    /// Unauthenticated connections by arrival (stale pairs, of connections gone or authenticated, are skipped).
    private var arrivals: [(number: UInt64, id: ObjectIdentifier)] = []
    private var arrivalsHead = 0
    private var nextNumber: UInt64 = 0

    init(limit: Int, unauthenticatedLimit: Int?) {
        self.limit = max(1, limit)
        self.unauthenticatedLimit = unauthenticatedLimit.map { min(max(1, $0), max(1, limit)) }
    }

    var count: Int { entries.count }
    var unauthenticated: Int { unauthenticatedCount }
    var connections: [Connection] { entries.values.map(\.connection) }

    /// Admits a new connection (unauthenticated when a token is configured), or says why not.
    mutating func admit(_ id: ObjectIdentifier, _ connection: Connection, peer: String) -> Admission {
        guard entries.count < limit else { return .full }
        var evicted: Evicted?
        if let unauthenticatedLimit {
            if unauthenticatedCount >= unauthenticatedLimit, let oldest = popOldestUnauthenticated() {
                evicted = oldest
            }
            nextNumber += 1
            entries[id] = Entry(connection: connection, peer: peer, unauthenticatedSince: nextNumber)
            arrivals.append((nextNumber, id))
            unauthenticatedCount += 1
        } else {
            entries[id] = Entry(connection: connection, peer: peer, unauthenticatedSince: nil)
        }
        return .admitted(evicting: evicted)
    }

    /// The connection authenticated: it no longer counts against the unauthenticated limit, and is never evicted.
    mutating func authenticated(_ id: ObjectIdentifier) {
        guard var entry = entries[id], entry.unauthenticatedSince != nil else { return }
        entry.unauthenticatedSince = nil
        entries[id] = entry
        unauthenticatedCount -= 1
    }

    /// The connection closed.
    mutating func remove(_ id: ObjectIdentifier) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        if entry.unauthenticatedSince != nil { unauthenticatedCount -= 1 }
        if arrivals.count - arrivalsHead > 2 * unauthenticatedCount + 64 { compactArrivals() }
    }

    /// Takes the oldest unauthenticated connection out (it is closed by the caller; its own close removes nothing
    /// more).
    private mutating func popOldestUnauthenticated() -> Evicted? {
        while arrivalsHead < arrivals.count {
            let (number, id) = arrivals[arrivalsHead]
            arrivalsHead += 1
            guard let entry = entries[id], entry.unauthenticatedSince == number else { continue }
            entries[id] = nil
            unauthenticatedCount -= 1
            if arrivalsHead > 64 && arrivalsHead * 2 > arrivals.count { compactArrivals() }
            return Evicted(connection: entry.connection, peer: entry.peer)
        }
        return nil
    }

    private mutating func compactArrivals() {
        arrivals = arrivals[arrivalsHead...].filter { pair in entries[pair.id]?.unauthenticatedSince == pair.number }
        arrivalsHead = 0
    }
}
