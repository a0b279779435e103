import Foundation
import PropertyBased
import Testing

@testable import RefundCore

/// Currencies and minor units, checked money arithmetic, and RFC 3339 timestamps.
@Suite struct CurrencyAndTimestampTests {
    // MARK: Currency

    @Test func isoCodesAndMinorUnits() throws {
        let expected: [(String, Int)] = [("GBP", 2), ("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3), ("KWD", 3), ("CLF", 4)]
        for (code, digits) in expected {
            let currency = try #require(Currency(code: code), "\(code)")
            #expect(currency.minorUnitDigits == digits, "\(code)")
            #expect(currency.code == code)
            #expect(currency.description == code)
        }
        #expect(Currency.gbp == Currency(code: "GBP"))
        #expect(Currency.jpy == Currency(code: "JPY"))
        #expect(Currency.bhd == Currency(code: "BHD"))
        for bad in ["gbp", "GB", "GBPX", "XXX", "", "ABC", "G1P"] { #expect(Currency(code: bad) == nil, "\(bad)") }
    }

    @Test func formatUsesIntegerArithmetic() {
        #expect(Currency.gbp.format(1234) == "12.34 GBP")
        #expect(Currency.gbp.format(5) == "0.05 GBP")
        #expect(Currency.gbp.format(-5) == "-0.05 GBP")
        #expect(Currency.gbp.format(0) == "0.00 GBP")
        #expect(Currency.jpy.format(500) == "500 JPY")
        #expect(Currency.jpy.format(-500) == "-500 JPY")
        #expect(Currency.bhd.format(1234) == "1.234 BHD")
        #expect(Currency.bhd.format(7) == "0.007 BHD")
        #expect(Currency.usd.format(Int64.max) == "92233720368547758.07 USD")
        #expect(Currency.usd.format(Int64.min) == "-92233720368547758.08 USD")
    }

    @Test func currencyCodable() throws {
        let data = try JSONEncoder().encode([Currency.gbp])
        #expect(String(decoding: data, as: UTF8.self) == "[\"GBP\"]")
        #expect(try JSONDecoder().decode([Currency].self, from: Data("[\"KWD\"]".utf8)) == [Currency(code: "KWD")!])
        do {
            _ = try JSONDecoder().decode([Currency].self, from: Data("[\"QQQ\"]".utf8))
            Issue.record("decoded an unknown currency")
        } catch let error as RefundError {
            #expect(error.code == .invalidCurrency)
            #expect(error.message.contains("QQQ"))
        }
    }

    // MARK: CheckedMoney

    @Test func checkedArithmetic() throws {
        #expect(try CheckedMoney.add(2, 3, "x") == 5)
        #expect(try CheckedMoney.subtract(2, 3, "x") == -1)
        #expect(try CheckedMoney.sum([1, 2, 3], "x") == 6)
        #expect(try CheckedMoney.sum([Int64](), "x") == 0)
        #expect(try CheckedMoney.add(Int64.max - 1, 1, "x") == Int64.max)
        let add = try #require(refundError { _ = try CheckedMoney.add(Int64.max, 1, "the refund amount") })
        #expect(add.code == .amountOverflow)
        #expect(add.message.contains("the refund amount"))
        #expect(refundError { _ = try CheckedMoney.subtract(Int64.min, 1, "x") }?.code == .amountOverflow)
        let sum = try #require(refundError { _ = try CheckedMoney.sum([Int64.max / 2, Int64.max / 2, 2], "the tender total") })
        #expect(sum.code == .amountOverflow)
        #expect(sum.message.contains("the tender total"))
    }

    @Test func errorDescription() {
        let error = RefundError(.lineNotFound, "no line 'x'")
        #expect(error.description == "line_not_found: no line 'x'")
        #expect(error.blocked.isEmpty)
    }

    // MARK: Timestamp

    @Test func parsesRFC3339() throws {
        #expect(Timestamp(iso8601: "2026-12-01T19:00:00Z") == Fixtures.eventStart)
        #expect(Timestamp(iso8601: "2026-11-22T10:00:00Z") == Fixtures.now)
        #expect(Timestamp(iso8601: "1970-01-01T00:00:00Z")?.milliseconds == 0)
        #expect(Timestamp(iso8601: "1969-07-20T20:17:40Z")?.milliseconds == -14_182_940_000)
        #expect(Timestamp(iso8601: "2024-02-29T23:59:59Z")?.milliseconds == 1_709_251_199_000)
        #expect(Timestamp(iso8601: "2026-12-01T19:00:00.5Z")?.milliseconds == 1_796_151_600_500)
        #expect(Timestamp(iso8601: "2026-12-01T19:00:00.123456Z")?.milliseconds == 1_796_151_600_123)
        #expect(Timestamp(iso8601: "2026-12-01T20:00:00+01:00") == Fixtures.eventStart)
        #expect(Timestamp(iso8601: "2026-12-01T14:30:00-04:30") == Fixtures.eventStart)
        #expect(Timestamp(iso8601: "2026-12-01t19:00:00z") == Fixtures.eventStart)
        #expect(Timestamp(iso8601: "2026-12-01 19:00:00Z") == Fixtures.eventStart)
    }

    @Test(arguments: [
        "", "2026-12-01", "2026-12-01T19:00:00", "2026-13-01T19:00:00Z", "2026-00-01T19:00:00Z", "2026-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T19:60:00Z",
        "2026-12-01T19:00:00.Z", "2026-12-01T19:00:00+0100", "2026-12-01T19:00:00+24:00", "2026/12/01T19:00:00Z",
        "2026-12-01T19:00:00Zjunk", "２０２６-12-01T19:00:00Z",
    ])
    func rejectsMalformedTimestamps(_ text: String) {
        #expect(Timestamp(iso8601: text) == nil)
    }

    @Test func leapYears() {
        #expect(Timestamp(iso8601: "2000-02-29T00:00:00Z") != nil)
        #expect(Timestamp(iso8601: "2024-02-29T00:00:00Z") != nil)
        #expect(Timestamp(iso8601: "2100-02-29T00:00:00Z") == nil)
    }

    @Test func formatsRFC3339() {
        #expect(Fixtures.eventStart.iso8601 == "2026-12-01T19:00:00Z")
        #expect(Timestamp(milliseconds: 0).iso8601 == "1970-01-01T00:00:00Z")
        #expect(Timestamp(milliseconds: 1_796_151_600_042).iso8601 == "2026-12-01T19:00:00.042Z")
        #expect(Timestamp(milliseconds: -1).iso8601 == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp(milliseconds: -14_182_940_000).description == "1969-07-20T20:17:40Z")
    }

    @Test func timestampCodable() throws {
        let data = try JSONEncoder().encode([Fixtures.eventStart])
        #expect(String(decoding: data, as: UTF8.self) == "[\"2026-12-01T19:00:00Z\"]")
        #expect(try JSONDecoder().decode([Timestamp].self, from: data) == [Fixtures.eventStart])
        do {
            _ = try JSONDecoder().decode([Timestamp].self, from: Data("[\"tomorrow\"]".utf8))
            Issue.record("decoded a bad timestamp")
        } catch let error as RefundError {
            #expect(error.code == .invalidTimestamp)
        }
    }

    @Test func roundTripsThroughText() async {
        // Years 1600–2400, any millisecond.
        await propertyCheck(count: 300, input: Gen.int64(in: -11_676_096_000_000...13_569_465_600_000)) { ms in
            let t = Timestamp(milliseconds: ms)
            #expect(Timestamp(iso8601: t.iso8601) == t, "\(ms) → \(t.iso8601)")
        }
    }

    @Test func orderingAndAdding() {
        let t = Fixtures.now
        #expect(t < t.adding(milliseconds: 1))
        #expect(t.adding(milliseconds: -1) < t)
        #expect(t.adding(milliseconds: 3_600_000).adding(milliseconds: -3_600_000) == t)
        #expect(Timestamp(milliseconds: Int64.max - 1).adding(milliseconds: 5).milliseconds == Int64.max)
    }

    /// Adding saturates: past the end of time it clamps to `Int64.max`, and before the start it should clamp to
    /// `Int64.min` — not jump to the far future.
    @Test func addingSaturatesDownwardsToo() {
        let early = Timestamp(milliseconds: Int64.min + 1)
        #expect(early.adding(milliseconds: -10).milliseconds == Int64.min)
    }
}

@Test func saturatingAddClampsInsteadOfWrapping() {
    #expect(CheckedMoney.saturatingAdd(1, 2) == 3)
    #expect(CheckedMoney.saturatingAdd(Int64.max, 1) == Int64.max)
    #expect(CheckedMoney.saturatingAdd(Int64.min, -1) == Int64.min)
    var value = Int64.max - 1
    value.addSaturating(5)
    #expect(value == Int64.max)
}
