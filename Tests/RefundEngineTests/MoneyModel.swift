import RefundCore

/// A small reference model of an order's money, written from docs/money.md and independent of `RefundPlanner`,
/// `Allocation` and `OrderState`: its own allocation (128-bit, largest remainder), its own selection and
/// eligibility, its own fee, booking-fee, tax and tender arithmetic. `ModelBasedTests` runs the real engine and
/// this model side by side and compares them after every step.
///
/// It covers what its orders can hold: ticket and product lines with discounts, tax, processing and platform
/// fees; a booking fee; card, wallet and cash tenders; every refund method, the three fee forms, both policies
/// and the include flags. Whatever the engine does that the model does not predict (gateway outcomes, retries)
/// the model mirrors from the engine and checks for legality instead.
enum ModelMath {
    /// Splits `amount` over `weights`: floor shares, the leftover one unit each to the largest remainders, ties
    /// to the lower index (contract section 1). Every split sums to `amount`.
    static func split(_ amount: Int64, over weights: [Int64]) -> [Int64] {
        let total = weights.reduce(Int128(0)) { $0 + Int128($1) }
        guard total > 0 else { return weights.map { _ in 0 } }
        var shares: [Int64] = []
        var remainders: [(remainder: Int128, index: Int)] = []
        for (index, weight) in weights.enumerated() {
            let product = Int128(amount) * Int128(weight)
            shares.append(Int64(product / total))
            remainders.append((product % total, index))
        }
        var left = amount - shares.reduce(0, +)
        let ranked = remainders.sorted { $0.remainder != $1.remainder ? $0.remainder > $1.remainder : $0.index < $1.index }
        for entry in ranked where left > 0 {
            shares[entry.index] += 1
            left -= 1
        }
        return shares
    }
}

struct ModelLine {
    var id: String
    var price: Int64
    var discount: Int64
    var tax: Int64
    var processingFee: Int64
    var platformFee: Int64
    var active = true
    /// Removed by a refund with method none (no money).
    var cancelled = false
    var paid: Int64 { price - discount }
    var value: Int64 { paid + processingFee + platformFee }
}

struct ModelTender {
    var id: String
    var method: TenderMethod
    var amount: Int64
    /// What the tender's transactions and balance refunds have taken from it.
    var claimed: Int64 = 0
    var remaining: Int64 { amount - claimed }
}

/// What the model expects a refund to be.
struct ModelRefund: Equatable {
    var id: String
    var method: RefundMethod
    var amount: Int64
    var feeRetained: Int64
    var tax: Int64
    var bookingFee: Int64
    /// (line id, amount, fee, tax) per selected line, in order-line order.
    var lines: [ModelRefundLine]
    /// (tender id or nil for balance, amount) of each transaction.
    var transactions: [ModelTransaction]
    var jobID: String?
}

struct ModelRefundLine: Equatable {
    var line: String
    var amount: Int64
    var fee: Int64
    var tax: Int64
}

struct ModelTransaction: Equatable {
    var tender: String?
    var amount: Int64
}

/// The model's answer to a refund request: the refund it expects, or the error codes it allows.
enum ModelVerdict {
    case refund(ModelRefund, tenderTake: [Int64], balanceCredit: Int64, removed: [Int], cancels: Bool)
    case rejected(Set<String>)
}

struct ModelOrder {
    var id: String
    var event: String
    var customer: String?
    var bookingFee: Int64
    var bookingFeeRefunded = false
    var lines: [ModelLine]
    var tenders: [ModelTender]
    var disputeOpen = false
    var refunds: [ModelRefund] = []

    var gross: Int64 { tenders.reduce(0) { $0 + $1.amount } }
    var activeCount: Int { lines.filter(\.active).count }

    /// Plans a staff refund (not self-service) with `options`, given whether a transaction of the order is still
    /// pending. The order of checks is the documented one: option validation, nothing left, order-level blocks
    /// (refund in progress, disputed, no payment), line blocks, then amounts (fees), then the balance method.
    func plan(_ options: RefundOptions, pending: Bool) -> ModelVerdict {
        if options.method == .none, options.fee != nil { return .rejected(["invalid_field"]) }
        if options.lines == nil, activeCount == 0 { return .rejected(["nothing_to_refund"]) }
        var orderBlocks: [String] = []
        if pending { orderBlocks.append("refund_in_progress") }
        if disputeOpen { orderBlocks.append("disputed") }
        let remaining = tenders.reduce(0) { $0 + $1.remaining }
        if options.method != .none, gross == 0 || (remaining <= 0 && activeCount > 0) {
            orderBlocks.append("no_payment_to_refund")
        }
        var selected: [Int] = []
        var lineBlocks: [String] = []
        if let ids = options.lines {
            for id in ids {
                guard let index = lines.firstIndex(where: { $0.id == id }) else { return .rejected(["line_not_found"]) }
                if lines[index].active { selected.append(index) } else { lineBlocks.append("already_refunded") }
            }
            selected.sort()
        } else {
            selected = lines.indices.filter { lines[$0].active }
        }
        if let first = (orderBlocks + lineBlocks).first { return .rejected([first]) }
        if selected.isEmpty { return .rejected(["nothing_to_refund"]) }

        let money = options.method != .none
        let full = options.policy == .full
        let refundable: [Int64] = selected.map { index in
            guard money else { return 0 }
            let line = lines[index]
            var amount = line.paid
            if options.includeProcessingFees || full { amount += line.processingFee }
            if options.includePlatformFees || full { amount += line.platformFee }
            return amount
        }
        var fees = [Int64](repeating: 0, count: selected.count)
        switch options.fee {
        case .each(let fee)?:
            if refundable.contains(where: { fee > $0 }) { return .rejected(["fee_exceeds_refundable"]) }
            fees = fees.map { _ in fee }
        case .perLine(let byLine)?:
            for (id, fee) in byLine {
                guard let position = selected.firstIndex(where: { lines[$0].id == id }) else {
                    return .rejected(["line_not_found"])
                }
                if fee > refundable[position] { return .rejected(["fee_exceeds_refundable"]) }
                fees[position] = fee
            }
        case .order(let fee)?:
            let total = refundable.reduce(0, +)
            fees = ModelMath.split(min(fee, total), over: refundable)
        case nil: break
        }
        var refundLines: [ModelRefundLine] = []
        for (position, index) in selected.enumerated() {
            let line = lines[index]
            let refunded = refundable[position] - fees[position]
            var tax: Int64 = 0
            if money, line.tax > 0, refundable[position] > 0 {
                tax = ModelMath.split(line.tax, over: [refunded, fees[position]])[0]
            }
            refundLines.append(ModelRefundLine(line: line.id, amount: refunded, fee: fees[position], tax: tax))
        }
        var booking: Int64 = 0
        if money, options.includeBookingFee || full, !bookingFeeRefunded, bookingFee > 0, selected.count == activeCount {
            booking = bookingFee
        }
        let amount = refundLines.reduce(0) { $0 + $1.amount } + booking
        if options.method == .balance, customer == nil || amount == 0 { return .rejected(["method_not_available"]) }

        var transactions: [ModelTransaction] = []
        var take = [Int64](repeating: 0, count: tenders.count)
        var credit: Int64 = 0
        let weights = tenders.map(\.remaining)
        switch options.method {
        case .original, .offline:
            take = tenders.count == 1 ? [amount] : ModelMath.split(amount, over: weights)
            for (i, share) in take.enumerated() where share > 0 {
                transactions.append(ModelTransaction(tender: tenders[i].id, amount: share))
                if options.method == .original, tenders[i].method == .wallet { credit += share }
            }
        case .balance:
            take = tenders.count == 1 ? [amount] : ModelMath.split(amount, over: weights)
            transactions.append(ModelTransaction(tender: nil, amount: amount))
            credit = amount
        case .none:
            break
        }
        let refund = ModelRefund(
            id: "", method: options.method, amount: amount, feeRetained: fees.reduce(0, +),
            tax: refundLines.reduce(0) { $0 + $1.tax }, bookingFee: booking, lines: refundLines,
            transactions: transactions, jobID: nil)
        return .refund(refund, tenderTake: take, balanceCredit: credit, removed: selected, cancels: !money)
    }

    /// Applies a refund the engine made as the model planned it.
    mutating func apply(_ refund: ModelRefund, tenderTake: [Int64], removed: [Int]) {
        for (i, taken) in tenderTake.enumerated() { tenders[i].claimed += taken }
        for index in removed { lines[index].active = false }
        if refund.bookingFee > 0 { bookingFeeRefunded = true }
        refunds.append(refund)
    }

    /// The order's totals from the model's lines and the engine's transaction states (what the gateway said is
    /// not the model's to predict): `refunded`, `outstanding`, `retained` and `net` by their definitions.
    func totals(_ engineRefunds: [Refund]) -> ModelTotals {
        var refunded: Int64 = 0
        var outstanding: Int64 = 0
        var writtenOff: Int64 = 0
        var refundAmounts: Int64 = 0
        for refund in engineRefunds {
            refundAmounts += refund.amount
            let closing = refund.recoveries.last { $0.action.closes }?.action
            for transaction in refund.transactions {
                switch transaction.status {
                case .pending, .succeeded: refunded += transaction.amount
                case .failed:
                    switch closing {
                    case .refundedExternally?: refunded += transaction.amount
                    case .writtenOff?: writtenOff += transaction.amount
                    default: outstanding += transaction.amount
                    }
                }
            }
        }
        let anyActive = activeCount > 0
        let removedValue = lines.filter { !$0.active }.reduce(0) { $0 + $1.value } + (anyActive ? 0 : bookingFee)
        let net = lines.filter(\.active).reduce(0) { $0 + $1.value } + (anyActive ? bookingFee : 0)
        return ModelTotals(
            gross: gross, refunded: refunded, outstanding: outstanding, retained: removedValue - refundAmounts + writtenOff,
            net: net)
    }
}

struct ModelTotals: Equatable {
    var gross: Int64
    var refunded: Int64
    var outstanding: Int64
    var retained: Int64
    var net: Int64

    init(gross: Int64, refunded: Int64, outstanding: Int64, retained: Int64, net: Int64) {
        (self.gross, self.refunded, self.outstanding, self.retained, self.net) = (gross, refunded, outstanding, retained, net)
    }

    init(_ totals: OrderTotals) {
        self.init(
            gross: totals.gross, refunded: totals.refunded, outstanding: totals.outstanding, retained: totals.retained,
            net: totals.net)
    }
}
