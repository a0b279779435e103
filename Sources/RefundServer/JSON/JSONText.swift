/// The byte-level pieces of JSON output that ``JSONBytesEncoder`` and the hand-written response encoders
/// (``HotResponseEncoding``) share, so both write exactly the same text: strings escaped as Foundation's
/// `JSONEncoder` with `.withoutEscapingSlashes` escapes them, integers in decimal.
package enum JSONText {
    package static let quote = UInt8(ascii: "\"")
    package static let backslash = UInt8(ascii: "\\")
    package static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `value` in decimal.
    @inlinable package static func appendUnsigned(_ value: UInt64, to bytes: inout [UInt8]) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        // Digits right to left into a 20-byte scratch (UInt64.max has 20 digits), then one append.
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { raw in
            var x = value
            var i = 20
            while x != 0 {
                let (q, r) = x.quotientAndRemainder(dividingBy: 10)
                i -= 1
                raw[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: r)
                x = q
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[i..<20]))
        }
    }

    @inlinable @inline(__always) package static func appendInteger(_ value: Int64, to bytes: inout [UInt8]) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendUnsigned(value.magnitude, to: &bytes)
    }

    /// The string's UTF-8 with `"`, `\` and U+0000–U+001F escaped (nothing else), without the quotes. Runs that
    /// need no escaping are copied in one append each.
    @inlinable package static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) {
        var runStart = 0
        for i in 0..<utf8.count {
            let b = utf8[i]
            guard b < 0x20 || b == quote || b == backslash else { continue }
            if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
            runStart = i + 1
            bytes.append(backslash)
            switch b {
            case quote, backslash: bytes.append(b)
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            default:
                bytes.append(contentsOf: [
                    UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(b >> 4)],
                    hexDigits[Int(b & 0xF)],
                ])
            }
        }
        if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
    }

    /// `"…"`: the string quoted and escaped.
    @inlinable package static func appendString(_ string: String, to bytes: inout [UInt8]) {
        bytes.append(quote)
        var string = string
        string.withUTF8 { appendEscaped($0, to: &bytes) }
        bytes.append(quote)
    }
}
