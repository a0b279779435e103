/// Handles (order, event, customer, line and tender ids): 1–128 characters of `[A-Za-z0-9_.:-]`.
public enum Handle {
    public static let maxLength = 128

    public static func isValid(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"),
                UInt8(ascii: "-"):
                continue
            default:
                return false
            }
        }
        return true
    }

    /// Throws `invalid_handle` naming the field unless `value` is a valid handle. (`field` is built only for the
    /// error: validating an order names a field per line, and building those names cost more than the checks.)
    public static func validate(_ value: String, field: @autoclosure () -> String) throws(RefundError) {
        guard isValid(value) else {
            throw RefundError(
                .invalidHandle, "\(field()) must be 1–128 characters of [A-Za-z0-9_.:-], got '\(value.prefix(40))'")
        }
    }
}
