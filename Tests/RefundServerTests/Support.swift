import DaemonTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Connects `fd` to 127.0.0.1:`port`; on failure closes it and throws.
func connectLoopback(_ fd: Int32, port: Int) throws {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard result == 0 else {
        Glibc.close(fd)
        throw TestFailure("connect to port \(port) failed: errno \(errno)")
    }
}

/// A blocking line client over a TCP socket.
final class LineClient: @unchecked Sendable {
    // @unchecked: the write side and the read side are each used by one thread.
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        try connectLoopback(fd, port: port)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    init(unixSocket path: String, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw TestFailure("path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw TestFailure("connect to \(path) failed: errno \(errno)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    /// Writes all bytes; false if the peer closed.
    @discardableResult
    func send(bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    @discardableResult
    func send(_ line: String) -> Bool { send(bytes: Array((line + "\n").utf8)) }

    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// The next line, or nil at end of stream (or timeout).
    func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if n <= 0 { return nil }
            buffer += chunk[..<n]
        }
    }

    /// Reads one line as a JSON object.
    func readObject() throws -> [String: Any] {
        guard let line = readLine() else { throw TestFailure("connection closed or timed out") }
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(line.prefix(300))")
        }
        return object
    }

    /// Sends one request and reads its response (for connections with one request at a time).
    func call(_ request: String) throws -> [String: Any] {
        guard send(request) else { throw TestFailure("send failed") }
        return try readObject()
    }

    /// Sends and expects `ok: true`; returns `result`.
    func ok(_ request: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let response = try call(request)
        #expect(response["ok"] as? Bool == true, "\(request.prefix(120)) → \(response)", sourceLocation: sourceLocation)
        return response["result"] as? [String: Any] ?? [:]
    }

    /// Sends and expects `ok: false` with `code`.
    @discardableResult
    func fails(_ request: String, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let response = try call(request)
        let error = response["error"] as? [String: Any]
        #expect(response["ok"] as? Bool == false, "\(request.prefix(120)) → \(response)", sourceLocation: sourceLocation)
        #expect(error?["code"] as? String == code, "\(request.prefix(120)) → \(response)", sourceLocation: sourceLocation)
        return response
    }
}

/// The contract's example order (section 2), with a chosen id, event and customer.
func orderJSON(_ id: String, event: String = "evt_1", customer: String? = "cus_9", card: Int = 3000, wallet: Int = 1884)
    -> String
{
    let customerField = customer.map { "\"customer\":\"\($0)\"," } ?? ""
    return #"""
        {"id":"\#(id)","event":"\#(event)","event_starts_at":"2030-12-01T19:00:00Z",\#(customerField)"email":"a@example.com","currency":"GBP","channel":"online","source":"paid","parent":null,"frozen":false,"sync_pending":false,"booking_fee":150,"lines":[{"id":"l1","kind":"ticket","ticket_type":"tt_ga","price":5000,"discount":500,"tax":750,"processing_fee":135,"platform_fee":99,"transferred":false,"claimed":false}],"tenders":[{"id":"t1","method":"card","amount":\#(card),"gateway_ref":"pi_1"},{"id":"t2","method":"wallet","amount":\#(wallet)}]}
        """#
}

/// A one-line, two-ticket order paid by card.
func simpleOrderJSON(_ id: String, event: String = "evt_2") -> String {
    #"""
    {"id":"\#(id)","event":"\#(event)","customer":"cus_\#(id)","currency":"GBP","lines":[{"id":"a","ticket_type":"tt_a","price":2000},{"id":"b","ticket_type":"tt_a","price":2000}],"tenders":[{"id":"t1","method":"card","amount":4000}]}
    """#
}
