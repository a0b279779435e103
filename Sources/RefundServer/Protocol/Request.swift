import RefundCore
import RefundEngine

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A request id as the client sent it (any JSON scalar), echoed back unchanged in the response.
///
/// The server echoes a number or string id from its bytes: ``raw(_:)`` holds the id's JSON text exactly as the
/// request wrote it, so `123456789012345678901234567890`, `1.50`, `-0` and `"caf\u00e9"` come back byte for byte.
/// The other cases are for ids built in code and for decoders other than the server's.
public enum WireID: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    /// A number or string as its JSON text, exactly as the request wrote it (quotes and escapes included); written
    /// back verbatim. Built only from bytes ``JSONParser`` accepted as one JSON number or string.
    case raw(String)

    public init(from decoder: any Decoder) throws {
        // From the byte codec's tree: the scalar as it is (the same result as trying each type in turn below,
        // without a thrown and caught type mismatch per try).
        if let value = JSONValueDecoder.value(of: decoder), let id = WireID(value) {
            self = id
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let value = try? c.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? c.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? c.decode(Double.self) {
            self = .double(value)
        } else if let value = try? c.decode(String.self) {
            self = .string(value)
        } else {
            throw RefundError(.invalidField, "id must be a string, a number, a boolean or null")
        }
    }

    /// The id a JSON scalar is (an exact integer written `1.0` is `.int(1)`, as decoding Int64 first gives);
    /// nil for an array or object.
    init?(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let v): self = .bool(v)
        case .int(let v): self = .int(v)
        case .double(let v): self = exactInteger(v).map(WireID.int) ?? .double(v)
        case .string(let v): self = .string(v)
        case .array, .object: return nil
        }
    }

    /// The id of a request line: a number or string as the bytes `token` of the line that hold it (see
    /// ``JSONParser/parse(_:locatingMember:)``); `decoded` (what the decoder made of it) otherwise.
    init(decoded: WireID, token: UnsafeRawBufferPointer) {
        switch decoded {
        case .int, .double, .string: self = .raw(String(decoding: token, as: UTF8.self))
        case .null, .bool, .raw: self = decoded
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .raw(let text):
            // Another encoder cannot take JSON text: the value it stands for (a number beyond Double rounds there).
            try c.encode((try? JSONParser().parse(text)) ?? .string(text))
        }
    }

    /// Appends the id as JSON: a ``raw(_:)`` id verbatim, the others through `encoder`.
    func append(to bytes: inout [UInt8], encoder: JSONBytesEncoder) throws {
        if case .raw(let text) = self {
            bytes.append(contentsOf: text.utf8)
        } else {
            try encoder.encode(self, into: &bytes)
        }
    }
}

/// A JSON object key known only at run time.
struct Key: CodingKey, ExpressibleByStringLiteral {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
    init(stringLiteral value: String) { self.stringValue = value }
}

/// `"actor": {"id": "...", "permissions": [...]}`. Without `permissions`: staff (every permission but
/// `self_service`).
struct ActorSpec: Decodable {
    var caller: Caller

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let id = try c.decode(String.self, forKey: "id")
        let permissions = try c.decodeIfPresent([Permission].self, forKey: "permissions")
        caller = permissions.map { Caller(id: id, permissions: Set($0)) } ?? .staff(id)
    }
}

/// One decoded request line: the id (echoed back), the caller, and the operation or why it is not valid.
///
/// Decoding never fails once the line is a JSON object: a missing or bad field becomes `operation = .failure`,
/// so the error response still carries the request's id.
///
/// Strict (docs/protocol.md, "Strict requests"): every member of the request, and of every object in it, must be
/// a field of its op (or `id`, `op`, `actor`, accepted on every op), else `invalid_field` naming it; checked here
/// for the request itself (against its op) and by ``JSONValueDecoder`` for the objects inside.
package struct Request: Decodable {
    var id: WireID = .null
    var op: String?
    var caller: Caller = Request.defaultCaller
    var actorID: String?
    var operation: Result<Operation, RefundError>

    static let defaultActorID = "staff"
    /// Built once: a staff caller's permission set costs a Set construction per request otherwise.
    static let defaultCaller = Caller.staff(defaultActorID)

    package init(from decoder: any Decoder) throws {
        let c: KeyedDecodingContainer<Key>
        do {
            c = try decoder.container(keyedBy: Key.self)
        } catch {
            throw RefundError(.invalidJSON, "a request is a JSON object: {\"id\":..,\"op\":\"..\",...}")
        }
        // The request's members are checked below, against its op, once it decoded; a request that failed for
        // another reason has its answer, so the decoder's own check of the root must not report it again.
        defer { JSONValueDecoder.markAllRead(decoder) }
        do {
            id = try c.decodeIfPresent(WireID.self, forKey: "id") ?? .null
        } catch {
            operation = .failure(RefundError(.invalidField, "id must be a string, a number, a boolean or null"))
            return
        }
        var name: String?
        do {
            let op = try c.decode(String.self, forKey: "op")
            name = op
            self.op = op
            let operation = try Operation.decode(op: op, c, decoder)
            if let actor = try c.decodeIfPresent(ActorSpec.self, forKey: "actor") {
                caller = actor.caller
                actorID = actor.caller.id
            }
            try JSONValueDecoder.checkFieldsRead(decoder, describedAs: op)
            self.operation = .success(operation)
        } catch {
            operation = .failure(RefundError.from(decoding: error, op: name))
        }
    }
}

// Names of the request's objects in "is not a field of …" messages.
extension ActorSpec: JSONDescribedObject { package static var jsonObjectDescription: String { "an actor" } }
extension Order: JSONDescribedObject { package static var jsonObjectDescription: String { "an order" } }
extension OrderLine: JSONDescribedObject { package static var jsonObjectDescription: String { "an order line" } }
extension Tender: JSONDescribedObject { package static var jsonObjectDescription: String { "a tender" } }
extension CancellationFee: JSONDescribedObject { package static var jsonObjectDescription: String { "a fee" } }
extension OrderFactsUpdate.Line: JSONDescribedObject { package static var jsonObjectDescription: String { "a line update" } }
extension RefundOptions: JSONDescribedObject { package static var jsonObjectDescription: String { "refund options" } }

extension TransactionStatus: JSONEnumeratedValues {
    /// `refund.list`'s `status`: not `CaseIterable` in RefundCore, so listed here.
    package static var jsonAllowedValues: [String] {
        let all: [TransactionStatus] = [.pending, .succeeded, .failed]
        // An exhaustive switch: a status added in RefundCore stops this compiling, next to the list above.
        for status in all {
            switch status {
            case .pending, .succeeded, .failed: continue
            }
        }
        return all.map(\.rawValue)
    }
}

extension RefundError.Code {
    /// The line is not JSON (or not UTF-8), or not a JSON object.
    public static let invalidJSON: Self = "invalid_json"
    /// `op` names no operation.
    public static let unknownOp: Self = "unknown_op"
    /// The line is longer than the server's limit; it was discarded up to its newline.
    public static let lineTooLong: Self = "line_too_long"
    /// The server requires `{"op":"auth","token":..}` first, or the token was wrong.
    public static let unauthorized: Self = "unauthorized"
    /// The server is at its connection limit (or closed an unauthenticated connection to make room).
    public static let tooManyConnections: Self = "too_many_connections"
    /// A token is configured and the connection did not authenticate within the auth deadline; it is closed.
    public static let authTimeout: Self = "auth_timeout"
    /// The connection was idle (or none of its responses was read) for the idle timeout; it is closed.
    public static let idleTimeout: Self = "idle_timeout"
    /// The server is shutting down and takes no new requests.
    public static let shuttingDown: Self = "shutting_down"
    /// A bug: the server could not encode its answer.
    public static let internalError: Self = "internal_error"
}

extension RefundError {
    /// Maps what `JSONValueDecoder` (or a model type's `init(from:)`) throws to a protocol error. `op`: the
    /// request's op once known; field paths then start with it (`refund.create.fee.order`).
    public static func from(decoding error: any Error, op: String? = nil) -> RefundError {
        if let error = error as? RefundError { return error }
        guard let error = error as? DecodingError else {
            return RefundError(.invalidField, "\(error)".prefix(200).description)
        }
        switch error {
        case .keyNotFound(let key, let context):
            return RefundError(.missingField, "\(path(context.codingPath + [key], op: op)) is required")
        case .typeMismatch(let type, let context):
            return RefundError(.invalidField, "\(path(context.codingPath, op: op)) must be \(describe(type))")
        case .valueNotFound(let type, let context):
            return RefundError(.invalidField, "\(path(context.codingPath, op: op)) must be \(describe(type)), not null")
        case .dataCorrupted(let context):
            if let parse = context.underlyingError as? JSONParseError {
                return RefundError(.invalidJSON, "not valid JSON: \(parse.description.prefix(240))")
            }
            if context.codingPath.isEmpty {
                return RefundError(.invalidJSON, "not valid JSON: \(context.debugDescription.prefix(160))")
            }
            let at = path(context.codingPath, op: op)
            if let unknown = context.underlyingError as? JSONUnknownFieldError {
                return RefundError(.invalidField, "\(at) is not a field of \(unknown.object)")
            }
            return RefundError(.invalidField, "\(at): \(context.debugDescription.prefix(240))")
        @unknown default:
            return RefundError(.invalidField, "\(error)".prefix(200).description)
        }
    }

    /// `order.lines[0].price`; with `op`, `order.put.order.lines[0].price`.
    static func path(_ keys: [any CodingKey], op: String? = nil) -> String {
        var out = op ?? ""
        for key in keys {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                if !out.isEmpty { out += "." }
                out += key.stringValue
            }
        }
        return out.isEmpty ? "the request" : out
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int64.Type, is Int.Type, is UInt64.Type: "an integer"
        case is Double.Type: "a number"
        default:
            "\(type)".hasPrefix("Array") ? "an array" : (("\(type)".hasPrefix("Dictionary")) ? "an object" : "of type \(type)")
        }
    }
}
