import RefundCore

/// The answer to `ping`: liveness, plus the versions a client can check before it relies on anything else.
/// `{"protocol_version":1,"version":"0.9.0"}`.
struct PingResult: Encodable, Sendable {
    var protocolVersion = RefundEngineVersion.protocolVersion
    var version = RefundEngineVersion.current

    enum CodingKeys: String, CodingKey {
        case version
        case protocolVersion = "protocol_version"
    }
}
