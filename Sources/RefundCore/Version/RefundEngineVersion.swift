/// The versions a running RefundEngine reports: one place for the release, the wire protocol and the data
/// directory layout, shared by `refundd --version`, `refundctl --version` and the protocol's `ping` answer.
///
/// See `CHANGELOG.md` for what changed between releases.
public enum RefundEngineVersion {
    /// The release, in semantic-versioning form. Below 1.0 a minor release may change the Swift API; the
    /// protocol and the data directory format change only with their own numbers below.
    public static let current = "0.9.0"

    /// The line-delimited JSON protocol (`docs/protocol.md`), reported by `ping` as `protocol_version`. It goes
    /// up when a request or a response changes in a way an existing client could notice (a field removed or
    /// given another meaning, an op removed); added ops, added optional fields and added response fields
    /// leave it as it is.
    public static let protocolVersion = 1

    /// The protocol versions a connection may choose with `hello` (`{"op":"hello","protocol_version":2}`). A
    /// connection speaks ``protocolVersion`` until it says otherwise, so an existing client never sees a change
    /// it did not ask for. Version 2: `order.get` without `include` answers the compact view (as with
    /// `"include":[]`); everything else is as in version 1.
    public static let protocolVersions: ClosedRange<Int> = 1...2

    /// The data directory layout `engine.meta` states (`refund-engine data 5`). An engine opens the layouts
    /// before it (1 to 4) and upgrades them in place; a later layout is refused.
    public static let dataDirectoryLayout = 5

    /// `refundd 0.9.0 (protocol 1, data directory layout 5)`: what `--version` prints after the program's name.
    public static var description: String {
        "\(current) (protocol \(protocolVersion), data directory layout \(dataDirectoryLayout))"
    }
}
