/// The rules an order must satisfy to be stored (`order.put`). Any violation is a coded error naming the field.
public enum OrderValidation {
    public static func validate(_ order: Order) throws(RefundError) {
        try Handle.validate(order.id, field: "order.id")
        try Handle.validate(order.event, field: "order.event")
        if let customer = order.customer { try Handle.validate(customer, field: "order.customer") }
        if let parent = order.parent {
            try Handle.validate(parent, field: "order.parent")
            guard parent != order.id else { throw RefundError(.invalidField, "order.parent cannot be the order itself") }
        }
        if let email = order.email {
            guard email.utf8.count <= 254, email.contains("@") else {
                throw RefundError(.invalidField, "order.email '\(email.prefix(40))' is not an email address")
            }
        }
        try nonNegative(order.bookingFee, "order.booking_fee")
        guard !order.lines.isEmpty else { throw RefundError(.missingField, "order.lines must hold at least one line") }

        var expected: Int64 = order.bookingFee
        for (i, line) in order.lines.enumerated() {
            // The field's name, built only for an error message.
            func field() -> String { "order.lines[\(i)]" }
            try Handle.validate(line.id, field: "\(field()).id")
            // Orders hold a handful of lines: a scan beats hashing into a Set.
            guard !order.lines[..<i].contains(where: { $0.id == line.id }) else {
                throw RefundError(.duplicateID, "\(field()).id '\(line.id)' appears twice in the order")
            }
            if let ticketType = line.ticketType { try Handle.validate(ticketType, field: "\(field()).ticket_type") }
            if let holder = line.holder {
                try Handle.validate(holder, field: "\(field()).holder")
                guard line.kind == .ticket else {
                    throw RefundError(.invalidField, "\(field()).holder: only a ticket has a holder (this line is a \(line.kind.rawValue))")
                }
            }
            try nonNegative(line.price, "\(field()).price")
            try nonNegative(line.discount, "\(field()).discount")
            try nonNegative(line.tax, "\(field()).tax")
            try nonNegative(line.processingFee, "\(field()).processing_fee")
            try nonNegative(line.platformFee, "\(field()).platform_fee")
            guard line.discount <= line.price else {
                throw RefundError(.invalidAmount, "\(field()).discount \(line.discount) exceeds its price \(line.price)")
            }
            guard line.tax <= line.paidValue else {
                throw RefundError(.invalidAmount, "\(field()).tax \(line.tax) exceeds its paid value \(line.paidValue)")
            }
            if line.kind == .walletTopUp, order.customer == nil {
                throw RefundError(.invalidField, "\(field()) is a wallet top-up but the order has no customer")
            }
            expected = try CheckedMoney.add(expected, line.paidValue, "the order total")
            expected = try CheckedMoney.add(expected, line.processingFee, "the order total")
            expected = try CheckedMoney.add(expected, line.platformFee, "the order total")
        }

        var paid: Int64 = 0
        for (i, tender) in order.tenders.enumerated() {
            func field() -> String { "order.tenders[\(i)]" }
            try Handle.validate(tender.id, field: "\(field()).id")
            guard !order.tenders[..<i].contains(where: { $0.id == tender.id }) else {
                throw RefundError(.duplicateID, "\(field()).id '\(tender.id)' appears twice in the order")
            }
            try nonNegative(tender.amount, "\(field()).amount")
            if tender.method == .wallet, order.customer == nil {
                throw RefundError(.invalidField, "\(field()) is paid from a wallet but the order has no customer")
            }
            if let ref = tender.gatewayRef, ref.isEmpty || ref.utf8.count > 256 {
                throw RefundError(.invalidField, "\(field()).gateway_ref must be 1–256 characters")
            }
            paid = try CheckedMoney.add(paid, tender.amount, "the tender total")
        }
        // A free or comp order was not paid for: a tender with money on it contradicts its source. Accepted, it
        // could never be refunded (every money method answers no_payment_to_refund), so the money would be stuck.
        if order.source != .paid, paid > 0 {
            throw RefundError(
                .orderInvalid,
                "order.source is \(order.source.rawValue) but order.tenders carry \(paid): a free or comp order has no paid tenders (use source paid, or tenders of 0)"
            )
        }
        guard paid == expected else {
            throw RefundError(
                .orderUnbalanced,
                "tenders sum to \(paid) but lines (paid value + processing_fee + platform_fee) and booking_fee sum to \(expected)"
            )
        }
    }

    private static func nonNegative(_ amount: Int64, _ field: @autoclosure () -> String) throws(RefundError) {
        guard amount >= 0 else { throw RefundError(.invalidAmount, "\(field()) must not be negative, got \(amount)") }
    }
}
