import RefundServer

/// refundctl speaks the protocol with the daemon's own JSON (`RefundServer/JSON`): the same strict parser (a line it
/// accepts is never `invalid_json` there) and the same escaping.
typealias JSON = JSONValue

extension JSONParser {
    /// The parser refundctl reads answers and checks input lines with: nesting up to 500, below the server's 512,
    /// so a line it accepts is never `invalid_json` once wrapped in a request.
    static let client = JSONParser(maximumDepth: 500)

    static func parse(_ text: String) throws(JSONParseError) -> JSON { try client.parse(text) }
    static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSON { try client.parse(bytes) }
}
