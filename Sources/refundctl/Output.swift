import RefundServer
import Foundation
import RefundCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writing to stdout / stderr and the terminal checks.
enum Console {
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }
    static var stdinIsTTY: Bool { isatty(STDIN_FILENO) == 1 }

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func err(_ text: String, newline: Bool = true) {
        FileHandle.standardError.write(Data((newline ? text + "\n" : text).utf8))
    }
}

/// Minor units with the currency's decimals: `4135` GBP → `41.35 GBP`; unknown currency: the plain number.
enum Money {
    static func format(_ minor: Int64, _ currency: String?) -> String {
        guard let code = currency, let c = Currency(code: code) else { return String(minor) }
        return c.format(minor)
    }

    /// Minor units as a decimal in major units, without the code (`4135` GBP → `41.35`); unknown currency: the
    /// plain number.
    static func decimal(_ minor: Int64, _ currency: String?) -> String {
        guard let code = currency, let c = Currency(code: code) else { return String(minor) }
        return c.decimal(minor)
    }

    /// Keys whose integer values are money.
    static let keys: Set<String> = [
        "amount", "fee_retained", "tax", "booking_fee", "gross", "refunded", "outstanding", "retained", "net",
        "paid_value", "price", "discount", "processing_fee", "platform_fee", "balance", "would_refund",
        "refundable_amount",
    ]
}

/// Aligned text tables and key/value blocks.
enum Render {
    /// The order keys are shown in (the server's JSON has no stable key order); others follow alphabetically.
    static let keyOrder: [String] = [
        "id", "job_id", "refund_id", "request_id", "order_id", "event", "customer", "currency", "kind", "line", "tender",
        "ticket_type", "state", "status", "dry_run", "refundable", "method", "reason", "amount", "paid_value",
        "fee_retained", "tax", "booking_fee", "refunded", "outstanding", "retained", "gross", "net", "attempts",
        "total", "processed", "succeeded", "pending", "failed", "skipped", "note", "restock", "created_at",
        "created_by", "requested_by",
    ]

    static func ordered(_ members: [(String, JSON)]) -> [(String, JSON)] {
        members.sorted { a, b in
            let i = keyOrder.firstIndex(of: a.0) ?? Int.max
            let j = keyOrder.firstIndex(of: b.0) ?? Int.max
            return i != j ? i < j : a.0 < b.0
        }
    }

    /// An aligned table; numeric-looking columns are right-aligned.
    static func table(_ headers: [String], _ rows: [[String]]) -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        let numeric = headers.indices.map { column in
            !rows.isEmpty
                && rows.allSatisfy { row in
                    column >= row.count || row[column].isEmpty || row[column] == "-"
                        || isNumeric(row[column])
                }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, width) in widths.enumerated() {
                let cell = i < cells.count ? cells[i] : ""
                let pad = String(repeating: " ", count: max(0, width - cell.count))
                parts.append(numeric[i] ? pad + cell : cell + pad)
            }
            var text = parts.joined(separator: "  ")
            while text.last == " " { text.removeLast() }
            return text
        }
        var out = [line(headers.map { $0.uppercased() })]
        out += rows.map(line)
        return out.joined(separator: "\n")
    }

    /// `12`, `-3`, `41.35 GBP`: right-aligned in tables.
    static func isNumeric(_ text: String) -> Bool {
        var body = Substring(text)
        if body.count > 4, body.dropLast(3).last == " ", body.suffix(3).allSatisfy({ $0.isUppercase }) { body = body.dropLast(4) }
        if body.first == "-" { body = body.dropFirst() }
        return !body.isEmpty && body.first?.isNumber == true && body.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// `key   value` lines, keys padded to one width.
    static func keyValues(_ pairs: [(String, String)]) -> String {
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }.joined(separator: "\n")
    }

    /// A cell: strings plain, money formatted, arrays of scalars joined, objects compact.
    static func cell(_ key: String, _ value: JSON?, currency: String?) -> String {
        guard let value else { return "-" }
        switch value {
        case .null: return "-"
        case .string(let s): return s
        case .bool(let b): return b ? "yes" : "no"
        case .int(let v): return Money.keys.contains(key) ? Money.format(v, currency) : String(v)
        case .double(let d): return String(d)
        case .array(let items):
            if items.isEmpty { return "-" }
            if items.allSatisfy({ $0.members == nil && $0.array == nil }) {
                return items.map { cell(key, $0, currency: currency) }.joined(separator: ",")
            }
            return "[\(items.count)]"
        case .object(let members):
            return members.map { "\($0.0)=\(cell($0.0, $0.1, currency: currency))" }.joined(separator: " ")
        }
    }

    /// A table of objects. Columns: `columns` if given, else every scalar key in first-seen order.
    static func objects(_ items: [JSON], columns: [String]? = nil, currency: (JSON) -> String? = { _ in nil }) -> String {
        var keys: [String] = columns ?? []
        if columns == nil {
            for item in items {
                for (key, value) in ordered(item.members ?? []) where !keys.contains(key) {
                    if value.members == nil, value.array?.contains(where: { $0.members != nil }) != true { keys.append(key) }
                }
            }
        }
        let rows = items.map { item in keys.map { cell($0, item[$0], currency: currency(item)) } }
        return table(keys, rows)
    }

    /// Any JSON value for people: an object as a key/value block (nested objects flattened as `a.b`), arrays of
    /// objects as titled tables after it.
    static func value(_ value: JSON, currency: String? = nil) -> String {
        switch value {
        case .object:
            var pairs: [(String, String)] = []
            var tables: [(String, [JSON])] = []
            flatten(value, prefix: "", pairs: &pairs, tables: &tables, currency: currency)
            var out = pairs.isEmpty ? "" : keyValues(pairs)
            for (title, items) in tables {
                if !out.isEmpty { out += "\n\n" }
                out += "\(title):\n" + (items.isEmpty ? "  (none)" : objects(items) { _ in currency })
            }
            return out.isEmpty ? "ok" : out
        case .array(let items) where items.contains(where: { $0.members != nil }):
            return objects(items) { _ in currency }
        default:
            return cell("", value, currency: currency)
        }
    }

    private static func flatten(
        _ value: JSON, prefix: String, pairs: inout [(String, String)], tables: inout [(String, [JSON])], currency: String?
    ) {
        for (key, child) in ordered(value.members ?? []) {
            let name = prefix.isEmpty ? key : prefix + "." + key
            switch child {
            case .object(let members) where !members.isEmpty:
                flatten(child, prefix: name, pairs: &pairs, tables: &tables, currency: currency)
            case .array(let items) where items.contains(where: { $0.members != nil }) || (items.isEmpty && key.hasSuffix("s")):
                if items.isEmpty && !["lines", "tenders", "refunds", "transactions", "requests", "blocked"].contains(key) {
                    pairs.append((name, "-"))
                } else {
                    tables.append((name, items))
                }
            default:
                pairs.append((name, cell(key, child, currency: currency)))
            }
        }
    }
}

/// A progress bar on stderr when it is a terminal; otherwise a line every few seconds.
final class Progress {
    let label: String
    let total: Int
    private let tty = Console.stderrIsTTY
    private var lastDraw = Date.distantPast
    private var lastLine = Date()
    private let start = Date()
    private var drawn = false

    init(_ label: String, total: Int) {
        self.label = label
        self.total = total
    }

    func update(_ done: Int, extra: String = "", force: Bool = false) {
        let now = Date()
        if tty {
            guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
            lastDraw = now
            let width = 30
            let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
            let filled = Int((fraction * Double(width)).rounded(.down))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let rate = Double(done) / max(0.001, now.timeIntervalSince(start))
            Console.err(
                "\r\(label) [\(bar)] \(done)/\(total) \(Int((fraction * 100).rounded(.down)))% \(Int(rate))/s \(extra)\u{1B}[K",
                newline: false)
            drawn = true
        } else {
            guard force || now.timeIntervalSince(lastLine) >= 2 else { return }
            lastLine = now
            Console.err("\(label): \(done)/\(total) \(extra)")
        }
    }

    func finish(_ done: Int, extra: String = "") {
        update(done, extra: extra, force: true)
        if tty && drawn { Console.err("") }
    }
}
