/// An ISO 4217 currency and the number of decimals of its minor unit.
///
/// Amounts are always `Int64` minor units of the order's currency (pence, cents, yen, fils). The engine never
/// converts between currencies and never uses floating point for money.
public struct Currency: Hashable, Sendable, Codable, CustomStringConvertible {
    public let code: String
    /// Decimals of the minor unit: GBP 2, JPY 0, BHD 3.
    public let minorUnitDigits: Int

    /// Looks a code up in the ISO 4217 table; nil for an unknown code.
    public init?(code: String) {
        guard let digits = Currency.digits(of: code) else { return nil }
        self.code = code
        self.minorUnitDigits = digits
    }

    public var description: String { code }

    public init(from decoder: any Decoder) throws {
        let code = try decoder.singleValueContainer().decode(String.self)
        guard let currency = Currency(code: code) else {
            throw RefundError(.invalidCurrency, "currency '\(code)' is not an ISO 4217 code")
        }
        self = currency
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }

    /// Formats minor units for people: `1234` GBP → `12.34 GBP`; `-5` → `-0.05 GBP`. Integer arithmetic only.
    public func format(_ minorUnits: Int64) -> String { "\(decimal(minorUnits)) \(code)" }

    /// Minor units as a decimal number in the currency's major units, without the code: `1234` GBP → `12.34`,
    /// `-5` → `-0.05`, `500` JPY → `500`. Integer arithmetic only.
    public func decimal(_ minorUnits: Int64) -> String {
        let negative = minorUnits < 0
        let magnitude = minorUnits.magnitude
        guard minorUnitDigits > 0 else { return "\(negative ? "-" : "")\(magnitude)" }
        var scale: UInt64 = 1
        for _ in 0..<minorUnitDigits { scale *= 10 }
        let whole = magnitude / scale
        var fraction = String(magnitude % scale)
        while fraction.count < minorUnitDigits { fraction = "0" + fraction }
        return "\(negative ? "-" : "")\(whole).\(fraction)"
    }

    public static let gbp = Currency(known: "GBP", 2)
    public static let eur = Currency(known: "EUR", 2)
    public static let usd = Currency(known: "USD", 2)
    public static let jpy = Currency(known: "JPY", 0)
    public static let bhd = Currency(known: "BHD", 3)

    private init(known code: String, _ digits: Int) {
        self.code = code
        self.minorUnitDigits = digits
    }

    private static func digits(of code: String) -> Int? {
        guard code.utf8.count == 3, code.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else { return nil }
        if zeroDecimal.contains(code) { return 0 }
        if threeDecimal.contains(code) { return 3 }
        if fourDecimal.contains(code) { return 4 }
        return twoDecimal.contains(code) ? 2 : nil
    }

    private static let zeroDecimal: Set<String> = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF",
        "XOF", "XPF",
    ]
    private static let threeDecimal: Set<String> = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]
    private static let fourDecimal: Set<String> = ["CLF", "UYW"]
    private static let twoDecimal: Set<String> = [
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BMD",
        "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CNY", "COP", "CRC", "CUP",
        "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP",
        "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR",
        "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP",
        "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN",
        "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
        "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD",
        "TZS", "UAH", "USD", "UZS", "VES", "WST", "XCD", "YER", "ZAR", "ZMW", "ZWL",
    ]
}
