import RefundServer
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What went wrong talking to `refundd`: a remote error response (`error <code>: <message>`) or a local one.
struct ClientError: Error, CustomStringConvertible {
    var code: String
    var message: String
    /// Eligibility failures: `[{"line":"l1","reason":"disputed"}]`.
    var blocked: JSON?

    init(_ code: String, _ message: String, blocked: JSON? = nil) {
        self.code = code
        self.message = message
        self.blocked = blocked
    }

    var description: String { "error \(code): \(message)" }
}

/// Where the daemon listens.
enum Endpoint: Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): path
        }
    }

    /// Loopback or a Unix socket: the only endpoints `bench` drives.
    var isLocal: Bool {
        switch self {
        case .unix: true
        case .tcp(let host, _): host == "localhost" || host == "::1" || host.hasPrefix("127.")
        }
    }
}

/// One socket carrying protocol lines both ways, non-blocking, driven by `poll(2)`.
///
/// Writes are queued and flushed as the socket accepts them while responses are read, so a pipelining client
/// never deadlocks against the server's backpressure (the server stops reading a connection that has
/// `--max-in-flight` requests unanswered on the wire).
final class LineConnection {
    let fd: Int32
    let endpoint: Endpoint
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    private(set) var closedByPeer = false

    init(_ endpoint: Endpoint) throws(ClientError) {
        self.endpoint = endpoint
        switch endpoint {
        case .tcp(let host, let port): fd = try LineConnection.connectTCP(host: host, port: port)
        case .unix(let path): fd = try LineConnection.connectUnix(path: path)
        }
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if case .tcp = endpoint {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    deinit { close(fd) }

    private static func connectTCP(host: String, port: Int) throws(ClientError) -> Int32 {
        guard (1...65535).contains(port) else { throw ClientError("connection_failed", "port \(port) is out of range") }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw ClientError("connection_failed", "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var lastError = ECONNREFUSED
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 {
                lastError = errno
                continue
            }
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            lastError = errno
            close(fd)
        }
        throw ClientError(
            "connection_failed", "cannot connect to \(Endpoint.tcp(host: host, port: port)): \(String(cString: strerror(lastError)))")
    }

    private static func connectUnix(path: String) throws(ClientError) -> Int32 {
        #if canImport(Glibc)
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw ClientError("connection_failed", "socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw ClientError("connection_failed", "unix socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            close(fd)
            throw ClientError("connection_failed", "cannot connect to \(path): \(String(cString: strerror(error)))")
        }
        return fd
    }

    /// Queues one line (a newline is added).
    func enqueue(_ line: String) {
        output.append(contentsOf: line.utf8)
        output.append(0x0A)
    }

    /// Queues raw bytes that already end with a newline.
    func enqueue(bytes: [UInt8]) { output.append(contentsOf: bytes) }

    var pendingOutput: Int { output.count - outputStart }

    /// The next complete line already read (without its newline), or nil.
    func nextLine() -> ArraySlice<UInt8>? {
        guard inputStart < input.count,
            let newline = input[inputStart...].firstIndex(of: 0x0A)
        else {
            if inputStart > 0 && inputStart == input.count {
                input.removeAll(keepingCapacity: true)
                inputStart = 0
            }
            return nil
        }
        var end = newline
        if end > inputStart && input[end - 1] == 0x0D { end -= 1 }
        let line = input[inputStart..<end]
        inputStart = newline + 1
        return line
    }

    /// Waits at most `timeoutMilliseconds` for the socket, writes what it takes, reads what it has.
    /// Returns false on timeout with nothing done. Throws when the connection fails.
    @discardableResult
    func pump(timeoutMilliseconds: Int32) throws(ClientError) -> Bool {
        if inputStart > 65536 && inputStart * 2 > input.count {
            input.removeSubrange(0..<inputStart)
            inputStart = 0
        }
        var events = Int16(POLLIN)
        if pendingOutput > 0 { events |= Int16(POLLOUT) }
        var descriptor = pollfd(fd: fd, events: events, revents: 0)
        let ready = poll(&descriptor, 1, timeoutMilliseconds)
        if ready < 0 {
            if errno == EINTR { return false }
            throw ClientError("connection_failed", "poll(): \(String(cString: strerror(errno)))")
        }
        if ready == 0 { return false }
        if descriptor.revents & Int16(POLLOUT) != 0 { try flush() }
        if descriptor.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { try readAvailable() }
        return true
    }

    /// Writes as much queued output as the socket takes now.
    func flush() throws(ClientError) {
        while outputStart < output.count {
            let n = output.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                #if canImport(Glibc)
                    return send(fd, base + outputStart, output.count - outputStart, Int32(MSG_NOSIGNAL))
                #else
                    return send(fd, base + outputStart, output.count - outputStart, 0)
                #endif
            }
            if n > 0 {
                outputStart += n
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { break }
            throw ClientError("connection_closed", "the server closed the connection (\(String(cString: strerror(errno))))")
        }
        if outputStart == output.count {
            output.removeAll(keepingCapacity: true)
            outputStart = 0
        } else if outputStart > 1 << 20 {
            output.removeSubrange(0..<outputStart)
            outputStart = 0
        }
    }

    /// Reused for every read (no allocation per read).
    private var chunk = [UInt8](repeating: 0, count: 65536)

    func readAvailable() throws(ClientError) {
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if n > 0 {
                input.append(contentsOf: chunk[0..<n])
                if n < 65536 { return }
                continue
            }
            if n == 0 {
                closedByPeer = true
                return
            }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
            closedByPeer = true
            throw ClientError("connection_closed", "read failed: \(String(cString: strerror(errno)))")
        }
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// One response line: `{"id":..,"ok":true,"result":..}`, `{"id":..,"ok":false,"error":..}` or an event
/// `{"event":..}`.
struct Response {
    var id: JSON
    var ok: Bool
    var result: JSON
    var error: ClientError?
    var event: JSON?
    var raw: String

    init(line: ArraySlice<UInt8>) throws(ClientError) {
        raw = String(decoding: line, as: UTF8.self)
        let value: JSON
        do {
            value = try JSONParser.parse(Array(line))
        } catch {
            throw ClientError("bad_response", "the server sent a line that is not JSON (\(error)): \(raw.prefix(200))")
        }
        id = value["id"] ?? .null
        event = value["event"]
        ok = value["ok"]?.bool ?? false
        result = value["result"] ?? .null
        if !ok, event == nil {
            let body = value["error"]
            error = ClientError(
                body?["code"]?.string ?? "unknown_error", body?["message"]?.string ?? raw,
                blocked: body?["blocked"].flatMap { $0.isNull ? nil : $0 })
        }
    }
}

/// A blocking client: `call` sends one request and waits for its response; `send`/`receive` pipeline.
final class Client {
    let connection: LineConnection
    let timeoutSeconds: Double
    let actor: JSON?
    private var nextID: Int64 = 1
    /// Responses read while waiting for another id, and event lines.
    private var stash: [Response] = []

    init(endpoint: Endpoint, token: String?, actor: JSON? = nil, timeoutSeconds: Double = 120) throws(ClientError) {
        connection = try LineConnection(endpoint)
        self.timeoutSeconds = timeoutSeconds
        self.actor = actor
        if let token {
            // Sent without an actor: auth takes only the token.
            let id = send("auth", ["token": .string(token)], withActor: false)
            _ = try wait(for: id).get()
        }
    }

    /// Builds a request line: `{"id":N,"op":OP,...params}`. Parameters that are null are left out (an option not
    /// given) unless `keepingNulls` (a null that means something, as `order.transfer`'s `to`).
    func requestLine(
        id: Int64, op: String, _ params: [(String, JSON)], withActor: Bool = true, keepingNulls: Bool = false
    ) -> String {
        var members: [(String, JSON)] = [("id", .int(id)), ("op", .string(op))]
        members += keepingNulls ? params : params.filter { !$0.1.isNull }
        if withActor, let actor, !params.contains(where: { $0.0 == "actor" }) { members.append(("actor", actor)) }
        return JSON.object(members).serialized
    }

    /// Queues a request and returns its id (written on the next `pump`).
    @discardableResult
    func send(_ op: String, _ params: KeyValuePairs<String, JSON>, withActor: Bool = true) -> Int64 {
        send(op, params.map { ($0.key, $0.value) }, withActor: withActor)
    }

    @discardableResult
    func send(_ op: String, _ params: [(String, JSON)], withActor: Bool = true, keepingNulls: Bool = false) -> Int64 {
        let id = nextID
        nextID += 1
        connection.enqueue(requestLine(id: id, op: op, params, withActor: withActor, keepingNulls: keepingNulls))
        return id
    }

    /// Queues a prebuilt line whose id is `allocateID()`'s.
    func allocateID() -> Int64 {
        defer { nextID += 1 }
        return nextID
    }

    /// The next response or event line, in arrival order. Nil when `deadline` passes.
    func receive(until deadline: Date? = nil) throws(ClientError) -> Response? {
        if !stash.isEmpty { return stash.removeFirst() }
        let limit = deadline ?? Date().addingTimeInterval(timeoutSeconds)
        while true {
            if let line = connection.nextLine() {
                if line.isEmpty { continue }
                return try Response(line: line)
            }
            if connection.closedByPeer {
                throw ClientError("connection_closed", "the server closed the connection")
            }
            let left = limit.timeIntervalSinceNow
            if left <= 0 { return nil }
            try connection.pump(timeoutMilliseconds: Int32(min(left * 1000, 1000).rounded(.up)))
        }
    }

    /// Waits for the response with `id` (others are kept for later `receive` calls).
    func wait(for id: Int64) throws(ClientError) -> Result<JSON, ClientError> {
        if let index = stash.firstIndex(where: { $0.id == .int(id) }) {
            let response = stash.remove(at: index)
            return response.error.map { .failure($0) } ?? .success(response.result)
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            if let line = connection.nextLine() {
                if line.isEmpty { continue }
                let response = try Response(line: line)
                if response.id == .int(id) {
                    return response.error.map { .failure($0) } ?? .success(response.result)
                }
                if response.id.isNull, response.event == nil, let error = response.error {
                    // The server could not read a request's id (invalid_json, line_too_long): it was ours.
                    return .failure(error)
                }
                stash.append(response)
                continue
            }
            if connection.closedByPeer { throw ClientError("connection_closed", "the server closed the connection") }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw ClientError("timeout", "no response within \(Int(timeoutSeconds)) s") }
            try connection.pump(timeoutMilliseconds: Int32(min(left * 1000, 1000).rounded(.up)))
        }
    }

    /// Sends one request and returns its result; a remote error is thrown.
    func call(_ op: String, _ params: KeyValuePairs<String, JSON> = [:]) throws(ClientError) -> JSON {
        try call(op, params.map { ($0.key, $0.value) })
    }

    func call(_ op: String, _ params: [(String, JSON)], keepingNulls: Bool = false) throws(ClientError) -> JSON {
        let id = send(op, params, keepingNulls: keepingNulls)
        return try wait(for: id).get()
    }

    /// A paged list op (`refund.list`, `refund.attention`, `refund.requests`): follows `next_cursor` until the list
    /// ends or `limit` items were read, and answers one object with every item under `key` (the server gives at
    /// most 1,000 per page; docs/protocol.md, "Paging").
    func callPaged(_ op: String, _ params: [(String, JSON)], key: String, limit: Int?) throws(ClientError) -> JSON {
        if let limit, limit < 1 { throw ClientError("invalid_field", "--limit must be at least 1") }
        var items: [JSON] = []
        var cursor: JSON = .null
        while true {
            let want = limit.map { min($0 - items.count, 1000) } ?? 1000
            let page = try call(op, params + [("limit", .int(Int64(want))), ("cursor", cursor)])
            items += page[key]?.array ?? []
            guard let next = page["next_cursor"], next != .null, limit.map({ items.count < $0 }) ?? true else { break }
            cursor = next
        }
        if let limit, items.count > limit { items.removeLast(items.count - limit) }
        return .object([(key, .array(items))])
    }

    /// Sends every request at once (pipelined) and returns the results in request order.
    func callAll(_ requests: [(String, [(String, JSON)])]) throws(ClientError) -> [Result<JSON, ClientError>] {
        var results: [Result<JSON, ClientError>] = []
        var start = 0
        // At most 64 in flight: well under the server's per-connection limit.
        while start < requests.count {
            let batch = requests[start..<min(start + 64, requests.count)]
            let ids = batch.map { send($0.0, $0.1) }
            for id in ids { results.append(try wait(for: id)) }
            start += batch.count
        }
        return results
    }
}
