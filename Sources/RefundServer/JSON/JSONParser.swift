/// Why a byte sequence is not JSON, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// The input ended inside a value (or was empty).
        case unexpectedEnd
        /// A byte that cannot start or continue what is being read.
        case unexpectedByte(UInt8)
        /// A byte sequence inside a string that is not UTF-8.
        case invalidUTF8
        /// An unescaped control character (U+0000–U+001F) inside a string.
        case controlCharacter
        /// A backslash escape that JSON does not have, or a `\u` without four hex digits.
        case invalidEscape
        /// A `\uD800`–`\uDFFF` escape that is not half of a high/low surrogate pair.
        case loneSurrogate
        /// A number with a leading zero (`01`).
        case leadingZero
        /// A malformed number (`-`, `1.`, `1e`).
        case invalidNumber
        /// A number too large for a Double (`1e400`).
        case numberOutOfRange
        /// Arrays and objects nested deeper than the limit.
        case tooDeep(Int)
        /// More than whitespace after the value.
        case trailingCharacters
        /// An object has two members with the same key. `path` names the repeated member from the document's
        /// root (`order.lines[0].price`; keys are cut to 64 characters).
        case duplicateKey(key: String, path: String)
    }

    public var reason: Reason
    /// Offset of the offending byte from the start of the input.
    public var offset: Int

    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String {
        let what =
            switch reason {
            case .unexpectedEnd: "unexpected end of input"
            case .unexpectedByte(let byte):
                byte >= 0x20 && byte < 0x7F
                    ? "unexpected character '\(Character(Unicode.Scalar(byte)))'" : "unexpected byte 0x\(hex(byte))"
            case .invalidUTF8: "invalid UTF-8 in a string"
            case .controlCharacter: "unescaped control character in a string"
            case .invalidEscape: "invalid escape sequence in a string"
            case .loneSurrogate: "unpaired UTF-16 surrogate escape in a string"
            case .leadingZero: "number with a leading zero"
            case .invalidNumber: "malformed number"
            case .numberOutOfRange: "number out of range"
            case .tooDeep(let limit): "arrays and objects nested deeper than \(limit)"
            case .trailingCharacters: "unexpected characters after the JSON value"
            case .duplicateKey(let key, let path):
                path == key ? "duplicate key '\(key)'" : "duplicate key '\(key)' (\(path))"
            }
        return "\(what) at byte \(offset)"
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}

/// A strict RFC 8259 parser from UTF-8 bytes to ``JSONValue``.
///
/// Rejects: invalid UTF-8, unescaped control characters, unknown escapes, lone surrogate escapes, leading zeros,
/// trailing commas, trailing garbage, nesting deeper than ``maximumDepth`` (512, as Foundation's), and an object
/// with two members of the same key (``JSONParseError/Reason/duplicateKey(key:path:)``: RFC 8259 leaves their
/// meaning open, Foundation keeps one of them; a request that says two things is refused instead). Accepts a
/// leading UTF-8 byte order mark, as Foundation's `JSONDecoder` does. Never traps on any input: every read is
/// bounds-checked and the recursion is bounded by the depth limit.
public struct JSONParser: Sendable {
    /// The deepest nesting of arrays and objects accepted (as Foundation's `JSONDecoder`: 512).
    public static let defaultMaximumDepth = 512

    public var maximumDepth: Int

    public init(maximumDepth: Int = JSONParser.defaultMaximumDepth) {
        self.maximumDepth = maximumDepth
    }

    /// Parses one JSON document (surrounded by optional whitespace).
    public func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { throw JSONParseError(.unexpectedEnd, at: 0) }
        var reader = Reader(
            base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maximumDepth: maximumDepth)
        return try reader.document()
    }

    /// Parses like ``parse(_:)-(UnsafeRawBufferPointer)`` and also says where the value of the top-level object's
    /// member `key` is in `bytes`: its JSON text exactly as written (a string with its quotes and escapes, a number
    /// with its digits, fraction and exponent). Nil when the document is not an object or has no such member.
    ///
    /// The protocol echoes a request's `id` from these bytes: a number parsed and written again would not be the
    /// same text (`123456789012345678901234567890` would come back as `1.2345678901234568e+29`).
    public func parse(_ bytes: UnsafeRawBufferPointer, locatingMember key: String) throws(JSONParseError) -> (
        value: JSONValue, member: Range<Int>?
    ) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { throw JSONParseError(.unexpectedEnd, at: 0) }
        var reader = Reader(
            base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maximumDepth: maximumDepth)
        reader.locating = key
        let value = try reader.document()
        return (value, reader.located)
    }

    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try withTypedThrows(bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) in try parse(raw) } })
    }

    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        return try withTypedThrows(
            text.withUTF8 { utf8 in Result { () throws(JSONParseError) in try parse(UnsafeRawBufferPointer(utf8)) } })
    }

    private func withTypedThrows(_ result: Result<JSONValue, JSONParseError>) throws(JSONParseError) -> JSONValue {
        try result.get()
    }
}

private let quote = UInt8(ascii: "\"")
private let backslash = UInt8(ascii: "\\")

/// The cursor over the input. `base` is valid for `count` bytes for the reader's whole life.
private struct Reader {
    let base: UnsafePointer<UInt8>
    let count: Int
    let maximumDepth: Int
    var i = 0
    var depth = 0
    /// A key of the top-level object whose value's bytes to record in ``located``.
    var locating: String?
    var located: Range<Int>?

    init(base: UnsafePointer<UInt8>, count: Int, maximumDepth: Int) {
        self.base = base
        self.count = count
        self.maximumDepth = maximumDepth
    }

    @inline(__always) func byte(_ at: Int) -> UInt8? { at < count ? base[at] : nil }

    @inline(__always) mutating func skipWhitespace() {
        while i < count {
            switch base[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    func error(_ reason: JSONParseError.Reason, _ at: Int? = nil) -> JSONParseError {
        JSONParseError(reason, at: at ?? i)
    }

    /// The byte at the cursor, or an end-of-input error.
    @inline(__always) func current() throws(JSONParseError) -> UInt8 {
        guard i < count else { throw error(.unexpectedEnd) }
        return base[i]
    }

    mutating func document() throws(JSONParseError) -> JSONValue {
        if count >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { i = 3 }
        skipWhitespace()
        let value = try self.value()
        skipWhitespace()
        guard i == count else { throw error(.trailingCharacters) }
        return value
    }

    mutating func value() throws(JSONParseError) -> JSONValue {
        let b = try current()
        switch b {
        case quote:
            return .string(try string())
        case UInt8(ascii: "{"):
            return try object()
        case UInt8(ascii: "["):
            return try array()
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number()
        default:
            throw error(.unexpectedByte(b))
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let text = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for expected in text {
            let b = try current()
            guard b == expected else { throw error(.unexpectedByte(b)) }
            i += 1
        }
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        guard depth <= maximumDepth else { throw error(.tooDeep(maximumDepth)) }
    }

    mutating func array() throws(JSONParseError) -> JSONValue {
        try enter()
        i += 1  // [
        skipWhitespace()
        var elements: [JSONValue] = []
        if try current() == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            do {
                elements.append(try value())
            } catch {
                throw error.inside(index: elements.count)
            }
            skipWhitespace()
            let b = try current()
            i += 1
            if b == UInt8(ascii: ",") {
                skipWhitespace()
                continue
            }
            guard b == UInt8(ascii: "]") else { throw error(.unexpectedByte(b), i - 1) }
            depth -= 1
            return .array(elements)
        }
    }

    mutating func object() throws(JSONParseError) -> JSONValue {
        try enter()
        i += 1  // {
        skipWhitespace()
        var members: [(key: String, value: JSONValue)] = []
        if try current() == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return .object(members)
        }
        // Duplicate detection: a 64-bit Bloom filter of the keys so far (a key whose bit is clear is new, no
        // comparison), a scan of the members when the bit is set; a set of the keys for large objects.
        var bloom: UInt64 = 0
        var seen = Set<String>()
        while true {
            let k = try current()
            guard k == quote else { throw error(.unexpectedByte(k)) }
            let keyStart = i
            let key = try string()
            if isDuplicate(key, raw: keyStart + 1..<i - 1, in: members, bloom: &bloom, seen: &seen) {
                let shown = displayedKey(key)
                throw error(.duplicateKey(key: shown, path: shown), keyStart)
            }
            skipWhitespace()
            let colon = try current()
            guard colon == UInt8(ascii: ":") else { throw error(.unexpectedByte(colon)) }
            i += 1
            skipWhitespace()
            let valueStart = i
            do {
                members.append((key, try value()))
            } catch {
                throw error.inside(key: key)
            }
            if depth == 1, let locating, key == locating { located = valueStart..<i }
            skipWhitespace()
            let b = try current()
            i += 1
            if b == UInt8(ascii: ",") {
                skipWhitespace()
                continue
            }
            guard b == UInt8(ascii: "}") else { throw error(.unexpectedByte(b), i - 1) }
            depth -= 1
            return .object(members)
        }
    }

    /// Objects up to this many members are checked for a repeated key with `bloom` and a scan (no allocation);
    /// larger ones through a set of their keys.
    static let duplicateScanLimit = 16

    /// Whether `key` (read from the bytes `raw`, without its quotes) is already a key of `members`. `bloom` has a
    /// bit set per key so far (see ``fingerprint(_:raw:)``); `seen` holds every key once `members` passed the
    /// scan limit.
    @inline(__always) func isDuplicate(
        _ key: String, raw: Range<Int>, in members: [(key: String, value: JSONValue)], bloom: inout UInt64,
        seen: inout Set<String>
    ) -> Bool {
        if members.count < Reader.duplicateScanLimit {
            let bit: UInt64 = 1 &<< (fingerprint(key, raw: raw) &>> 58)
            if bloom & bit == 0 {
                bloom |= bit
                return false
            }
            for member in members where member.key == key { return true }
            return false
        }
        if seen.isEmpty {
            seen.reserveCapacity(members.count * 2)
            for member in members { seen.insert(member.key) }
        }
        return !seen.insert(key).inserted
    }

    /// A cheap fingerprint of a key for the Bloom filter: its length and first and last bytes, mixed (from the input
    /// bytes when the key has no escapes, as then they are its UTF-8: every escape is longer than what it stands
    /// for; else from the decoded string). Its top 6 bits pick the key's bit.
    @inline(__always) func fingerprint(_ key: String, raw: Range<Int>) -> UInt64 {
        let count = key.utf8.count
        guard count > 0 else { return 0 }
        let first: UInt8
        let last: UInt8
        if raw.count == count {
            first = base[raw.lowerBound]
            last = base[raw.upperBound &- 1]
        } else {
            first = key.utf8.first ?? 0
            last = key.utf8.last ?? 0
        }
        return UInt64(truncatingIfNeeded: count) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(first) &* 0xC2B2_AE3D_27D4_EB4F
            ^ UInt64(last) &* 0x1656_67B1_9E37_79F9
    }

    // MARK: Strings

    /// A string starting at the opening quote under the cursor; leaves the cursor after the closing quote.
    mutating func string() throws(JSONParseError) -> String {
        i += 1  // "
        let start = i
        while i < count {
            let b = base[i]
            if b == quote {
                let slice = UnsafeBufferPointer(start: base + start, count: i - start)
                i += 1
                // Fast path: no escapes, one String of the slice (non-ASCII bytes were validated below).
                return String(decoding: slice, as: UTF8.self)
            }
            if b == backslash { return try escapedString(from: start) }
            if b < 0x20 { throw error(.controlCharacter) }
            if b >= 0x80 {
                i = try validateUTF8Sequence(at: i)
            } else {
                i += 1
            }
        }
        throw error(.unexpectedEnd)
    }

    /// The slow path: the string has escapes. `start` is its first byte; the cursor is at the first backslash.
    mutating func escapedString(from start: Int) throws(JSONParseError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(i - start + 16)
        out.append(contentsOf: UnsafeBufferPointer(start: base + start, count: i - start))
        while i < count {
            let b = base[i]
            switch b {
            case quote:
                i += 1
                return String(decoding: out, as: UTF8.self)
            case backslash:
                guard let e = byte(i + 1) else { throw error(.unexpectedEnd, i + 1) }
                switch e {
                case quote, backslash, UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    let escapeStart = i
                    i += 2
                    let unit = try hex4()
                    var scalar = UInt32(unit)
                    if unit >= 0xD800 && unit <= 0xDBFF {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard byte(i) == backslash, byte(i + 1) == UInt8(ascii: "u") else {
                            throw error(.loneSurrogate, escapeStart)
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw error(.loneSurrogate, escapeStart) }
                        scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    } else if unit >= 0xDC00 && unit <= 0xDFFF {
                        throw error(.loneSurrogate, escapeStart)
                    }
                    appendUTF8(scalar, to: &out)
                    continue
                default:
                    throw error(.invalidEscape)
                }
                i += 2
            default:
                if b < 0x20 { throw error(.controlCharacter) }
                if b >= 0x80 {
                    let next = try validateUTF8Sequence(at: i)
                    out.append(contentsOf: UnsafeBufferPointer(start: base + i, count: next - i))
                    i = next
                } else {
                    out.append(b)
                    i += 1
                }
            }
        }
        throw error(.unexpectedEnd)
    }

    /// A Unicode scalar value (not a surrogate, at most U+10FFFF) as UTF-8.
    func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(truncatingIfNeeded: scalar))
        case 0x80..<0x800:
            out.append(0xC0 | UInt8(truncatingIfNeeded: scalar >> 6))
            out.append(0x80 | UInt8(truncatingIfNeeded: scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(0xE0 | UInt8(truncatingIfNeeded: scalar >> 12))
            out.append(0x80 | UInt8(truncatingIfNeeded: (scalar >> 6) & 0x3F))
            out.append(0x80 | UInt8(truncatingIfNeeded: scalar & 0x3F))
        default:
            out.append(0xF0 | UInt8(truncatingIfNeeded: scalar >> 18))
            out.append(0x80 | UInt8(truncatingIfNeeded: (scalar >> 12) & 0x3F))
            out.append(0x80 | UInt8(truncatingIfNeeded: (scalar >> 6) & 0x3F))
            out.append(0x80 | UInt8(truncatingIfNeeded: scalar & 0x3F))
        }
    }

    /// Four hex digits at the cursor as a UTF-16 code unit; the cursor moves past them.
    mutating func hex4() throws(JSONParseError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard i < count else { throw error(.unexpectedEnd) }
            let b = base[i]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b &- UInt8(ascii: "A") &+ 10
            default: throw error(.invalidEscape)
            }
            value = value << 4 | UInt16(digit)
            i += 1
        }
        return value
    }

    /// Validates the multi-byte UTF-8 sequence starting at `at` (Unicode table 3-7: no overlong forms, no
    /// surrogates, nothing above U+10FFFF); returns the offset after it.
    func validateUTF8Sequence(at: Int) throws(JSONParseError) -> Int {
        let lead = base[at]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: throw error(.invalidUTF8, at)
        }
        guard at + length <= count else { throw error(.invalidUTF8, at) }
        let second = base[at + 1]
        guard second >= low && second <= high else { throw error(.invalidUTF8, at) }
        for k in 2..<max(2, length) where base[at + k] & 0xC0 != 0x80 {
            throw error(.invalidUTF8, at)
        }
        return at + length
    }

    // MARK: Numbers

    /// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`: an integer literal that fits is `.int`, every other
    /// number `.double`.
    mutating func number() throws(JSONParseError) -> JSONValue {
        let start = i
        var negative = false
        if base[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard let first = byte(i) else { throw error(.unexpectedEnd) }
        guard isDigit(first) else { throw error(.invalidNumber) }
        var magnitude: UInt64 = 0
        var overflow = false
        if first == UInt8(ascii: "0") {
            i += 1
            if let next = byte(i), isDigit(next) { throw error(.leadingZero, start) }
        } else {
            while let b = byte(i), isDigit(b) {
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(b &- UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                magnitude = sum
                i += 1
            }
        }
        var integral = true
        if byte(i) == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard let b = byte(i), isDigit(b) else { throw error(byte(i) == nil ? .unexpectedEnd : .invalidNumber) }
            while let b = byte(i), isDigit(b) { i += 1 }
        }
        if let e = byte(i), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            integral = false
            i += 1
            if let sign = byte(i), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { i += 1 }
            guard let b = byte(i), isDigit(b) else { throw error(byte(i) == nil ? .unexpectedEnd : .invalidNumber) }
            while let b = byte(i), isDigit(b) { i += 1 }
        }
        if integral && !overflow {
            if !negative, magnitude <= UInt64(Int64.max) { return .int(Int64(magnitude)) }
            if negative, magnitude <= UInt64(Int64.max) + 1 { return .int(Int64(truncatingIfNeeded: 0 &- magnitude)) }
        }
        // Fractions, exponents and integers beyond Int64: a correctly rounded Double (strtod via the stdlib).
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw error(.numberOutOfRange, start) }
        return .double(value)
    }

    @inline(__always) func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }
}

/// A key as error messages show it: at most 64 characters.
private func displayedKey(_ key: String) -> String {
    key.count > 64 ? key.prefix(64) + "…" : key
}

extension JSONParseError {
    /// A duplicate key's path seen from the object holding it as member `key` (others pass through unchanged).
    func inside(key: String) -> JSONParseError {
        guard case .duplicateKey(let duplicate, let path) = reason else { return self }
        let joined = path.hasPrefix("[") ? displayedKey(key) + path : displayedKey(key) + "." + path
        return JSONParseError(.duplicateKey(key: duplicate, path: joined), at: offset)
    }

    /// A duplicate key's path seen from the array holding it as element `index`.
    func inside(index: Int) -> JSONParseError {
        guard case .duplicateKey(let duplicate, let path) = reason else { return self }
        let joined = path.hasPrefix("[") ? "[\(index)]" + path : "[\(index)]." + path
        return JSONParseError(.duplicateKey(key: duplicate, path: joined), at: offset)
    }
}
