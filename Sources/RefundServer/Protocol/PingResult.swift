import RefundCore

/// The answer to `ping`: liveness, plus the versions a client can check before it relies on anything else.
/// `{"protocol_version":1,"protocol_versions":[1,2],"version":"0.9.0"}`: the version a connection starts with and
/// those it may choose with `hello`. Also the answer to `hello`, with the version the connection speaks now.
struct PingResult: Encodable, Sendable {
    var protocolVersion = RefundEngineVersion.protocolVersion
    var protocolVersions = Array(RefundEngineVersion.protocolVersions)
    var version = RefundEngineVersion.current

    enum CodingKeys: String, CodingKey {
        case version
        case protocolVersion = "protocol_version"
        case protocolVersions = "protocol_versions"
    }
}
