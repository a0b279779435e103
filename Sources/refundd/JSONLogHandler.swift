import Foundation
import Logging
import RefundCore
import RefundServer

/// `--log-format json`: one JSON object per line on standard error, for log shippers. Fields: `ts` (ISO 8601,
/// UTC, milliseconds), `level`, `label`, `message`, then every metadata field (`event`, `errno`, `file`, …) as a
/// string. Written with the server's own JSON encoder (escaping is exact); one `write` per line, so lines from
/// several threads never interleave.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata { fields[key] = "\(value)" }
        for (key, value) in metadataProvider?.get() ?? [:] { fields[key] = "\(value)" }
        for (key, value) in event.metadata ?? [:] { fields[key] = "\(value)" }
        fields["ts"] = Self.timestamp(Date())
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["message"] = "\(event.message)"
        // Sorted keys: the same event always gives the same bytes.
        var line = Array("{".utf8)
        let encoder = JSONBytesEncoder()
        for (index, key) in fields.keys.sorted().enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            try? encoder.encode(key, into: &line)  // a String always encodes; a log line must never throw
            line.append(UInt8(ascii: ":"))
            try? encoder.encode(fields[key] ?? "", into: &line)
        }
        line.append(contentsOf: Array("}\n".utf8))
        // One write(2) per line: lines from several threads never interleave (what is lost if it fails: a log line).
        line.withUnsafeBytes { buffer in _ = write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
    }

    static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        return Timestamp(milliseconds: milliseconds).iso8601
    }
}
