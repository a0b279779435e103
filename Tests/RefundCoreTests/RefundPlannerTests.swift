import Testing

@testable import RefundCore

/// What `RefundPlanner.plan` decides: the seed examples and the contract's worked example.
@Suite struct RefundPlannerTests {
    let context = Fixtures.context()

    // MARK: Contract sections 2/3

    @Test func contractExampleWholeOrderWithOrderFee() throws {
        let state = Fixtures.place(Fixtures.contractOrder())
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: .order(500)), context: context)
        #expect(plan.amount == 4135)
        #expect(plan.feeRetained == 500)
        #expect(plan.tax == 669)
        #expect(plan.bookingFee == 0)
        #expect(plan.lines == [RefundLine(line: "l1", amount: 4135, feeRetained: 500, tax: 669)])
        #expect(plan.transactions.map(\.tender) == ["t1", "t2"])
        #expect(plan.transactions.map(\.amount) == [2540, 1595])
        #expect(plan.transactions.map(\.method) == [.card, .wallet])
        // The card goes through the gateway; the wallet is credited at once.
        #expect(plan.transactions[0].status == .pending)
        #expect(plan.transactions[0].attempts == 0)
        #expect(plan.transactions[0].nextAttemptAt == context.now)
        #expect(plan.transactions[1].status == .succeeded)
        #expect(plan.transactions[1].attempts == 1)
        #expect(plan.skipped.isEmpty)
        #expect(plan.lineIndices == [0])
    }

    // MARK: Seed examples of the issue

    @Test func sixtyFortyCardWalletSplitRefundsSixtyForty() throws {
        let order = Fixtures.order(lines: Fixtures.tickets([10_000]), tenders: [.card, .wallet], tenderWeights: [60, 40])
        #expect(order.tenders.map(\.amount) == [6000, 4000])
        let state = Fixtures.place(order)
        let plan = try RefundPlanner.plan(state, Fixtures.options(), context: context)
        #expect(plan.amount == 10_000)
        #expect(plan.transactions.map(\.amount) == [6000, 4000])
        #expect(plan.transactions.map(\.method) == [.card, .wallet])

        // A partial refund keeps the same proportions.
        let two = Fixtures.place(
            Fixtures.order(lines: Fixtures.tickets([5000, 5000]), tenders: [.card, .wallet], tenderWeights: [60, 40]))
        let half = try RefundPlanner.plan(two, Fixtures.options(lines: ["l2"]), context: context)
        #expect(half.transactions.map(\.amount) == [3000, 2000])
    }

    @Test(arguments: [CancellationFee.perLine(["l1": 1000]), .each(1000)])
    func fiftyPoundTicketWithTenPoundCancellationFeeRefundsForty(fee: CancellationFee) throws {
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([5000])))
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: fee), context: context)
        #expect(plan.amount == 4000)
        #expect(plan.feeRetained == 1000)
        #expect(plan.lines == [RefundLine(line: "l1", amount: 4000, feeRetained: 1000, tax: 0)])
        #expect(plan.transactions.map(\.amount) == [4000])
    }

    @Test func eachFeeOnFiveItemsRetainsTwentyFive() throws {
        let prices: [Int64] = [1000, 2000, 3000, 1500, 2500]
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets(prices)))
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: .each(500)), context: context)
        #expect(plan.feeRetained == 2500)
        #expect(plan.amount == 10_000 - 2500)
        #expect(plan.lines.map(\.feeRetained) == [500, 500, 500, 500, 500])
        #expect(plan.lines.map(\.amount) == prices.map { $0 - 500 })
    }

    @Test func orderFeeOverFiveItemsRetainsExactlyFiveSplitByPrice() throws {
        let prices: [Int64] = [1099, 2350, 3125, 999, 1427]
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets(prices)))
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: .order(500)), context: context)
        #expect(plan.feeRetained == 500)
        #expect(plan.lines.map(\.feeRetained).reduce(0, +) == 500)
        #expect(plan.lines.map(\.feeRetained) == (try Allocation.split(500, by: prices)))
        #expect(plan.lines.map(\.feeRetained) == ReferenceAllocation.split(500, by: prices))
        #expect(plan.amount == prices.reduce(0, +) - 500)
        for (line, price) in zip(plan.lines, prices) { #expect(line.amount + line.feeRetained == price) }
    }

    @Test func orderFeeIsCappedAtTheRefundableTotal() throws {
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([300, 200])))
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: .order(10_000)), context: context)
        #expect(plan.feeRetained == 500)
        #expect(plan.amount == 0)
        #expect(plan.lines.map(\.feeRetained) == [300, 200])
        #expect(plan.transactions.isEmpty)
    }

    @Test func orderFeeSplitsOverRefundableIncludingProcessingFees() throws {
        var lines = Fixtures.tickets([1000, 3000])
        lines[0].processingFee = 100
        lines[1].processingFee = 300
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: .order(441)), context: context)
        #expect(plan.lines.map(\.feeRetained) == (try Allocation.split(441, by: [1100, 3300])))
        #expect(plan.amount == 4400 - 441)
    }

    @Test func bookingFeeIsNotRefundedByDefault() throws {
        // A £26.00 order: two £12.00 tickets and a £2.00 booking fee.
        let state = Fixtures.place(Fixtures.order(bookingFee: 200, lines: Fixtures.tickets([1200, 1200])))
        #expect(state.order.tenders.map(\.amount).reduce(0, +) == 2600)
        let plan = try RefundPlanner.plan(state, Fixtures.options(), context: context)
        #expect(plan.amount == 2400)
        #expect(plan.bookingFee == 0)
    }

    @Test func bookingFeeRefundedWithIncludeBookingFee() throws {
        let state = Fixtures.place(Fixtures.order(bookingFee: 200, lines: Fixtures.tickets([1200, 1200])))
        let plan = try RefundPlanner.plan(state, Fixtures.options(includeBookingFee: true), context: context)
        #expect(plan.amount == 2600)
        #expect(plan.bookingFee == 200)
        #expect(plan.transactions.map(\.amount) == [2600])
    }

    @Test func bookingFeeGoesOnlyWithTheLastActiveLine() throws {
        var state = Fixtures.place(Fixtures.order(bookingFee: 200, lines: Fixtures.tickets([1200, 1200])))
        let first = try RefundPlanner.plan(state, Fixtures.options(lines: ["l1"], includeBookingFee: true), context: context)
        #expect(first.amount == 1200)
        #expect(first.bookingFee == 0)
        try state.refund(Fixtures.options(lines: ["l1"], includeBookingFee: true))
        state.resolvePending(refund: 1, .succeeded(reference: "re_1"))
        let last = try RefundPlanner.plan(state, Fixtures.options(lines: ["l2"], includeBookingFee: true), context: context)
        #expect(last.amount == 1400)
        #expect(last.bookingFee == 200)
        try state.refund(Fixtures.options(lines: ["l2"], includeBookingFee: true))
        #expect(state.bookingFeeRefunded)
        #expect(state.tenderRefunded == [2600])
    }

    @Test func standardPolicyReturnsTheTicketMinusThePlatformFee() throws {
        let line = OrderLine(id: "l1", ticketType: "tt_ga", price: 5000, tax: 833, processingFee: 135, platformFee: 99)
        let state = Fixtures.place(Fixtures.order(bookingFee: 150, lines: [line]))
        let plan = try RefundPlanner.plan(state, Fixtures.options(), context: context)
        #expect(plan.amount == 5000 + 135)
        #expect(plan.tax == 833)
        // Without processing fees: the ticket alone.
        let bare = try RefundPlanner.plan(state, Fixtures.options(includeProcessingFees: false), context: context)
        #expect(bare.amount == 5000)
        // With platform fees too (but still not the booking fee).
        let withPlatform = try RefundPlanner.plan(state, Fixtures.options(includePlatformFees: true), context: context)
        #expect(withPlatform.amount == 5000 + 135 + 99)
    }

    @Test func fullPolicyReturnsEverythingTheBuyerPaid() throws {
        let line = OrderLine(id: "l1", ticketType: "tt_ga", price: 5000, discount: 250, processingFee: 135, platformFee: 99)
        let order = Fixtures.order(bookingFee: 150, lines: [line], tenders: [.card, .giftCard], tenderWeights: [3, 1])
        let paid = order.tenders.map(\.amount).reduce(0, +)
        let state = Fixtures.place(order)
        // Even with the inclusion flags off, `full` includes every fee and the booking fee.
        let plan = try RefundPlanner.plan(
            state, Fixtures.options(includeProcessingFees: false, policy: .full), context: context)
        #expect(plan.amount == paid)
        #expect(plan.amount == 4750 + 135 + 99 + 150)
        #expect(plan.bookingFee == 150)
        #expect(plan.transactions.map(\.amount) == order.tenders.map(\.amount))
    }

    @Test func discountedTicketRefundsAgainstWhatWasPaid() throws {
        let line = OrderLine(id: "l1", price: 5000, discount: 1500)
        let state = Fixtures.place(Fixtures.order(lines: [line]))
        let plan = try RefundPlanner.plan(state, Fixtures.options(), context: context)
        #expect(plan.amount == 3500)
    }

    // MARK: Tax

    @Test func taxIsRefundedInFullWithoutAFee() throws {
        let state = Fixtures.place(Fixtures.contractOrder())
        let plan = try RefundPlanner.plan(state, Fixtures.options(), context: context)
        #expect(plan.amount == 4635)
        #expect(plan.tax == 750)
    }

    @Test func taxFollowsTheAllocationRuleOverRefundedAndRetained() throws {
        var lines = Fixtures.tickets([2000, 3333, 999])
        lines[0].tax = 333
        lines[1].tax = 555
        lines[2].tax = 166
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: .each(250)), context: context)
        for (k, line) in plan.lines.enumerated() {
            let expected = try Allocation.split(lines[k].tax, by: [line.amount, line.feeRetained])[0]
            #expect(line.tax == expected, "line \(line.line)")
        }
        #expect(plan.tax == plan.lines.map(\.tax).reduce(0, +))
    }

    @Test func fullyRetainedLineRefundsNoTax() throws {
        var lines = Fixtures.tickets([1000])
        lines[0].tax = 200
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let plan = try RefundPlanner.plan(state, Fixtures.options(fee: .perLine(["l1": 1000])), context: context)
        #expect(plan.amount == 0)
        #expect(plan.tax == 0)
        #expect(plan.transactions.isEmpty)
    }

    // MARK: Methods

    @Test func offlineRecordsEveryTenderAsSucceeded() throws {
        let state = Fixtures.place(Fixtures.contractOrder())
        let plan = try RefundPlanner.plan(state, Fixtures.options(method: .offline), context: context)
        #expect(plan.transactions.map(\.amount) == (try Allocation.split(4635, by: [3000, 1884])))
        #expect(plan.transactions.allSatisfy { $0.status == .succeeded && $0.attempts == 1 })
        #expect(plan.transactions.map(\.method) == [.card, .wallet])
    }

    @Test func balanceIsOneTransactionToTheAccount() throws {
        let state = Fixtures.place(Fixtures.contractOrder())
        let plan = try RefundPlanner.plan(state, Fixtures.options(method: .balance), context: context)
        #expect(plan.transactions.count == 1)
        #expect(plan.transactions[0].tender == nil)
        #expect(plan.transactions[0].method == .balance)
        #expect(plan.transactions[0].amount == 4635)
        #expect(plan.transactions[0].status == .succeeded)
    }

    @Test func cancellationReturnsNoMoney() throws {
        let state = Fixtures.place(Fixtures.contractOrder())
        let plan = try RefundPlanner.plan(state, Fixtures.options(method: .none), context: context)
        #expect(plan.amount == 0)
        #expect(plan.feeRetained == 0)
        #expect(plan.tax == 0)
        #expect(plan.bookingFee == 0)
        #expect(plan.transactions.isEmpty)
        #expect(plan.lines == [RefundLine(line: "l1", amount: 0, feeRetained: 0, tax: 0)])
    }

    @Test func zeroSharesAreLeftOut() throws {
        // A tender with nothing left gets no transaction.
        let order = Fixtures.order(lines: Fixtures.tickets([1000, 1000]), tenders: [.card, .cash], tenderWeights: [1, 1])
        var state = Fixtures.place(order)
        try state.refund(Fixtures.options(lines: ["l1"], method: .offline))
        let plan = try RefundPlanner.plan(state, Fixtures.options(lines: ["l2"], fee: .perLine(["l2": 999])), context: context)
        #expect(plan.amount == 1)
        #expect(plan.transactions.count == 1)
        #expect(plan.transactions[0].tender == "t1")
    }

    // MARK: Selection

    @Test func implicitSelectionSkipsBlockedLinesAndRefundsTheRest() throws {
        var lines = Fixtures.tickets([1000, 2000, 3000])
        lines[1].kind = .deposit
        lines[2].transferred = true
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let plan = try RefundPlanner.plan(state, Fixtures.options(), context: context)
        #expect(plan.lineIndices == [0])
        #expect(plan.amount == 1000)
        #expect(
            plan.skipped == [
                BlockedItem(line: "l2", reason: .depositNotRefundable),
                BlockedItem(line: "l3", reason: .transferredAfterCheckout),
            ])
    }

    @Test func implicitSelectionListsLinesAlreadyRemoved() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 2000, 3000])))
        try state.refund(Fixtures.options(lines: ["l2"], method: .offline))
        let plan = try RefundPlanner.plan(state, Fixtures.options(), context: context)
        #expect(plan.lineIndices == [0, 2])
        #expect(plan.skipped == [BlockedItem(line: "l2", reason: .alreadyRefunded)])
    }

    @Test func explicitSelectionKeepsTheGivenOrder() throws {
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([100, 200, 300])))
        let plan = try RefundPlanner.plan(state, Fixtures.options(lines: ["l3", "l1"]), context: context)
        #expect(plan.lineIndices == [2, 0])
        #expect(plan.lines.map(\.line) == ["l3", "l1"])
        #expect(plan.amount == 400)
    }

    @Test func planningChangesNothing() throws {
        let state = Fixtures.place(Fixtures.contractOrder())
        let copy = state
        _ = try RefundPlanner.plan(state, Fixtures.options(fee: .order(500)), context: context)
        #expect(state == copy)
    }
}
