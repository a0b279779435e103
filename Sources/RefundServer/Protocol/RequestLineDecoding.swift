import RefundCore

/// A public entry point to the protocol's request decoding, which is otherwise internal (``Request``,
/// ``Operation``): one line in, the request's id, its op and the error the server would answer with.
///
/// It exists for the libFuzzer target in `Fuzz/` (which links the library without `@testable`) and for tools that
/// want to check a request line without a server. It decodes exactly as the connection loop in `Server.swift`
/// does: ``JSONValueDecoder`` over the line's bytes into a `Request`, whose fields and operation arguments are
/// decoded and validated there; a line that is not JSON (or not a JSON object) maps to the same error.
public enum RequestLineDecoding {
    public struct Outcome: Sendable, Equatable {
        /// The request's id as it would be echoed back (`.null` when the line had none or did not decode).
        public var id: WireID
        /// The op the line names, when it names one.
        public var op: String?
        /// The error the server would answer with, or nil when the line decodes to an operation.
        public var error: RefundError?
    }

    /// Decodes one request line (without its newline).
    public static func decode(_ line: UnsafeRawBufferPointer, decoder: JSONValueDecoder = JSONValueDecoder())
        -> Outcome
    {
        switch request(line, decoder: decoder) {
        case .failure(let error): return Outcome(id: .null, op: nil, error: error)
        case .success(let request):
            switch request.operation {
            case .success: return Outcome(id: request.id, op: request.op, error: nil)
            case .failure(let error): return Outcome(id: request.id, op: request.op, error: error)
            }
        }
    }

    /// The request a line holds, or the error for a line that is not a JSON object (answered with id `null`).
    /// A number or string id keeps its bytes (``WireID/raw(_:)``), to be echoed verbatim.
    static func request(_ line: UnsafeRawBufferPointer, decoder: JSONValueDecoder) -> Result<Request, RefundError> {
        let parsed: (value: JSONValue, member: Range<Int>?)
        do {
            parsed = try decoder.parser.parse(line, locatingMember: "id")
        } catch {
            // The parser validates UTF-8 itself (a line it accepts is valid UTF-8), so the separate validation
            // pass runs only on failure, to keep the message for non-UTF-8 lines.
            guard String(validating: line, as: UTF8.self) != nil else {
                return .failure(RefundError(.invalidJSON, "the line is not valid UTF-8"))
            }
            return .failure(RefundError(.invalidJSON, "not valid JSON: \(error.description.prefix(240))"))
        }
        var request: Request
        do {
            request = try decoder.decode(Request.self, from: parsed.value)
        } catch {
            return .failure(RefundError.from(decoding: error))
        }
        if let token = parsed.member {
            request.id = WireID(decoded: request.id, token: UnsafeRawBufferPointer(rebasing: line[token]))
        }
        return .success(request)
    }

    /// Decodes one request line (without its newline).
    public static func decode(_ line: [UInt8]) -> Outcome {
        line.withUnsafeBytes { decode($0) }
    }
}
