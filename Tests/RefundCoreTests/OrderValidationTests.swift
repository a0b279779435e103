import Testing

@testable import RefundCore

/// `OrderValidation.validate`: every rule an order must satisfy to be stored, each a coded error naming the field.
@Suite struct OrderValidationTests {
    struct Mutation: Sendable, CustomTestStringConvertible {
        var name: String
        var code: RefundError.Code
        /// Text the message must contain (the field or the rule).
        var mentions: String
        var mutate: @Sendable (inout Order) -> Void
        var testDescription: String { name }
    }

    static let mutations: [Mutation] = [
        // Handles
        Mutation(name: "empty order id", code: .invalidHandle, mentions: "order.id") { $0.id = "" },
        Mutation(name: "bad order id char", code: .invalidHandle, mentions: "order.id") { $0.id = "ord 1" },
        Mutation(name: "order id too long", code: .invalidHandle, mentions: "order.id") {
            $0.id = String(repeating: "o", count: 129)
        },
        Mutation(name: "bad event", code: .invalidHandle, mentions: "order.event") { $0.event = "evt/1" },
        Mutation(name: "bad customer", code: .invalidHandle, mentions: "order.customer") { $0.customer = "" },
        Mutation(name: "bad parent", code: .invalidHandle, mentions: "order.parent") { $0.parent = "p#1" },
        Mutation(name: "bad line id", code: .invalidHandle, mentions: "order.lines[0].id") { $0.lines[0].id = "l 1" },
        Mutation(name: "bad ticket type", code: .invalidHandle, mentions: "order.lines[1].ticket_type") {
            $0.lines[1].ticketType = "tt ga"
        },
        Mutation(name: "bad tender id", code: .invalidHandle, mentions: "order.tenders[1].id") { $0.tenders[1].id = "" },
        // Duplicates
        Mutation(name: "duplicate line", code: .duplicateID, mentions: "order.lines[1].id") { $0.lines[1].id = "l1" },
        Mutation(name: "duplicate tender", code: .duplicateID, mentions: "order.tenders[1].id") { $0.tenders[1].id = "t1" },
        // Amounts
        Mutation(name: "negative booking fee", code: .invalidAmount, mentions: "order.booking_fee") { $0.bookingFee = -1 },
        Mutation(name: "negative price", code: .invalidAmount, mentions: "order.lines[0].price") { $0.lines[0].price = -1 },
        Mutation(name: "negative discount", code: .invalidAmount, mentions: "order.lines[0].discount") {
            $0.lines[0].discount = -1
        },
        Mutation(name: "negative tax", code: .invalidAmount, mentions: "order.lines[0].tax") { $0.lines[0].tax = -1 },
        Mutation(name: "negative processing fee", code: .invalidAmount, mentions: "order.lines[0].processing_fee") {
            $0.lines[0].processingFee = -1
        },
        Mutation(name: "negative platform fee", code: .invalidAmount, mentions: "order.lines[0].platform_fee") {
            $0.lines[0].platformFee = -1
        },
        Mutation(name: "negative tender", code: .invalidAmount, mentions: "order.tenders[0].amount") {
            $0.tenders[0].amount = -5
        },
        Mutation(name: "discount above price", code: .invalidAmount, mentions: "order.lines[1].discount") {
            $0.lines[1].discount = $0.lines[1].price + 1
        },
        Mutation(name: "tax above paid value", code: .invalidAmount, mentions: "order.lines[0].tax") {
            $0.lines[0].tax = $0.lines[0].paidValue + 1
        },
        // Overflow
        Mutation(name: "lines overflow", code: .amountOverflow, mentions: "order total") {
            $0.lines[0].price = Int64.max
            $0.lines[0].discount = 0
            $0.lines[0].tax = 0
        },
        Mutation(name: "fees overflow", code: .amountOverflow, mentions: "order total") {
            $0.lines[1].processingFee = Int64.max
        },
        Mutation(name: "tenders overflow", code: .amountOverflow, mentions: "tender total") {
            $0.tenders[0].amount = Int64.max
        },
        // Balance
        Mutation(name: "tenders short", code: .orderUnbalanced, mentions: "tenders sum to") { $0.tenders[0].amount -= 1 },
        Mutation(name: "tenders over", code: .orderUnbalanced, mentions: "booking_fee") { $0.tenders[1].amount += 1 },
        Mutation(name: "booking fee unpaid", code: .orderUnbalanced, mentions: "tenders sum to") { $0.bookingFee += 10 },
        // Fields
        Mutation(name: "parent is itself", code: .invalidField, mentions: "order.parent") { $0.parent = $0.id },
        Mutation(name: "email without @", code: .invalidField, mentions: "order.email") { $0.email = "nobody" },
        Mutation(name: "email too long", code: .invalidField, mentions: "order.email") {
            $0.email = String(repeating: "a", count: 250) + "@x.io"
        },
        Mutation(name: "wallet top-up without customer", code: .invalidField, mentions: "order.lines[1]") {
            $0.customer = nil
            $0.tenders[1].method = .cash
            $0.lines[1].kind = .walletTopUp
        },
        Mutation(name: "wallet tender without customer", code: .invalidField, mentions: "order.tenders[1]") {
            $0.customer = nil
        },
        Mutation(name: "empty gateway ref", code: .invalidField, mentions: "order.tenders[0].gateway_ref") {
            $0.tenders[0].gatewayRef = ""
        },
        Mutation(name: "gateway ref too long", code: .invalidField, mentions: "order.tenders[0].gateway_ref") {
            $0.tenders[0].gatewayRef = String(repeating: "g", count: 257)
        },
        Mutation(name: "no lines", code: .missingField, mentions: "order.lines") {
            $0.lines = []
            $0.bookingFee = $0.tenders.map(\.amount).reduce(0, +)
        },
    ]

    /// The contract order plus a product line, card 3000 + wallet (the rest).
    static func base() -> Order {
        var order = Fixtures.contractOrder()
        order.lines.append(OrderLine(id: "l2", kind: .product, ticketType: "tt_merch", price: 1200, discount: 200, tax: 100))
        order.tenders[1].amount += 1000
        return order
    }

    @Test func theBaseOrdersAreValid() throws {
        try OrderValidation.validate(Fixtures.contractOrder())
        try OrderValidation.validate(Self.base())
    }

    @Test(arguments: mutations)
    func rejects(_ mutation: Mutation) throws {
        var order = Self.base()
        mutation.mutate(&order)
        let error = try #require(refundError { try OrderValidation.validate(order) })
        #expect(error.code == mutation.code, "\(error)")
        #expect(error.message.contains(mutation.mentions), "\(error.message)")
    }

    @Test func acceptsEdgeCases() throws {
        var order = Self.base()
        order.id = String(repeating: "a", count: 128)
        order.event = "evt_A-1.b:c"
        order.email = nil
        order.parent = "ord_parent"
        try OrderValidation.validate(order)

        // A free order: zero-value lines, no tenders.
        let free = Fixtures.order(source: .free, lines: Fixtures.tickets([0, 0]), tenders: [])
        try OrderValidation.validate(free)

        // A box-office order paid in cash; discount equal to the price; tax equal to the paid value.
        var boxOffice = Fixtures.order(customer: nil, lines: Fixtures.tickets([1000, 500]), tenders: [.cash, .card])
        boxOffice.lines[0].discount = 1000
        boxOffice.lines[1].tax = 500
        boxOffice.tenders = [Tender(id: "t1", method: .cash, amount: 500)]
        try OrderValidation.validate(boxOffice)

        // Amounts right up to Int64.max balance without overflow.
        let huge = Order(
            id: "ord_h", event: "evt_1", currency: .jpy, bookingFee: 1,
            lines: [OrderLine(id: "l1", price: Int64.max - 1)],
            tenders: [Tender(id: "t1", method: .cash, amount: Int64.max - 1), Tender(id: "t2", method: .cash, amount: 1)])
        try OrderValidation.validate(huge)
    }

    @Test func handles() {
        #expect(Handle.isValid("a"))
        #expect(Handle.isValid("AZaz09_.:-"))
        #expect(Handle.isValid(String(repeating: "x", count: 128)))
        #expect(!Handle.isValid(String(repeating: "x", count: 129)))
        #expect(!Handle.isValid(""))
        for bad in ["a b", "a/b", "é", "a\n", "a@b", "a+b", "🎟"] { #expect(!Handle.isValid(bad), "\(bad)") }
        let error = refundError { try Handle.validate("bad id", field: "order.lines[3].id") }
        #expect(error?.code == .invalidHandle)
        #expect(error?.message.contains("order.lines[3].id") == true)
    }
}
