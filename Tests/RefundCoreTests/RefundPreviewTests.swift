import Testing

@testable import RefundCore

/// `RefundPlanner.preview` (contract section 5): what would refund now, what is blocked and why, the methods
/// available — without changing anything.
@Suite struct RefundPreviewTests {
    let context = Fixtures.context()

    @Test func previewMatchesThePlanAndChangesNothing() throws {
        let state = Fixtures.place(Fixtures.contractOrder())
        let before = state
        let options = Fixtures.options(fee: .order(500))
        let preview = try RefundPlanner.preview(state, options, context: context)
        #expect(state == before)
        #expect(state.refunds.isEmpty && state.timeline.count == 1 && state.tenderRefunded == [0, 0])

        let plan = try RefundPlanner.plan(state, options, context: context)
        #expect(preview.orderID == "ord_1")
        #expect(preview.refundable)
        #expect(preview.amount == 4135 && plan.amount == 4135)
        #expect(preview.feeRetained == 500)
        #expect(preview.tax == 669)
        #expect(preview.bookingFee == 0)
        #expect(preview.lines == plan.lines)
        #expect(
            preview.tenders == [
                RefundPreview.TenderShare(tender: "t1", method: .card, amount: 2540),
                RefundPreview.TenderShare(tender: "t2", method: .wallet, amount: 1595),
            ])
        #expect(preview.blocked.isEmpty)
        #expect(preview.methodsAvailable == [.original, .offline, .balance, .none])
    }

    @Test func previewListsBlockedLinesAndStillRefundsTheRest() throws {
        var lines = Fixtures.tickets([1000, 2000, 3000])
        lines[1].kind = .deposit
        lines[2].kind = .giftVoucher
        lines[2].claimed = true
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let preview = try RefundPlanner.preview(state, Fixtures.options(), context: context)
        #expect(preview.refundable)
        #expect(preview.amount == 1000)
        #expect(preview.lines.map(\.line) == ["l1"])
        #expect(
            preview.blocked == [
                BlockedItem(line: "l2", reason: .depositNotRefundable),
                BlockedItem(line: "l3", reason: .giftVoucherClaimed),
            ])
        #expect(preview.methodsAvailable == [.original, .offline, .balance, .none])
    }

    @Test func previewOfABlockedSelectionIsNotRefundable() throws {
        var lines = Fixtures.tickets([1000, 2000])
        lines[1].transferred = true
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let preview = try RefundPlanner.preview(state, Fixtures.options(lines: ["l1", "l2"]), context: context)
        #expect(!preview.refundable)
        #expect(preview.amount == 0 && preview.lines.isEmpty && preview.tenders.isEmpty)
        #expect(preview.blocked == [BlockedItem(line: "l2", reason: .transferredAfterCheckout)])
        // A cancellation of the same lines would go through.
        #expect(preview.methodsAvailable == [.none])
    }

    @Test func previewOfAFrozenOrderBlocksEveryMethod() throws {
        let state = Fixtures.place(Fixtures.order(frozen: true, lines: Fixtures.tickets([1000])))
        let preview = try RefundPlanner.preview(state, Fixtures.options(), context: context)
        #expect(!preview.refundable)
        #expect(preview.blocked == [BlockedItem(line: nil, reason: .orderFrozen)])
        #expect(preview.methodsAvailable.isEmpty)
    }

    @Test func methodsAvailableDependOnTheOrderAndTheCaller() throws {
        // Box office: no balance.
        let boxOffice = Fixtures.place(Fixtures.order(customer: nil, lines: Fixtures.tickets([1000]), tenders: [.cash]))
        #expect(try RefundPlanner.preview(boxOffice, Fixtures.options(), context: context).methodsAvailable == [.original, .offline, .none])
        // A caller who may refund but not cancel.
        let refunder = Caller(id: "usr_2", permissions: [.refund])
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000])))
        #expect(
            try RefundPlanner.preview(state, Fixtures.options(), context: Fixtures.context(caller: refunder)).methodsAvailable
                == [.original, .offline, .balance])
        // Nothing paid: only a cancellation.
        let free = Fixtures.place(Fixtures.order(source: .free, lines: Fixtures.tickets([0]), tenders: []))
        let preview = try RefundPlanner.preview(free, Fixtures.options(), context: context)
        #expect(!preview.refundable)
        #expect(preview.blocked == [BlockedItem(line: nil, reason: .noPaymentToRefund)])
        #expect(preview.methodsAvailable == [.none])
    }

    @Test func previewWhileARefundIsInProgress() throws {
        var state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 2000])))
        try state.refund(Fixtures.options(lines: ["l1"]))
        let before = state
        let preview = try RefundPlanner.preview(state, Fixtures.options(), context: context)
        #expect(state == before)
        #expect(!preview.refundable)
        #expect(preview.blocked.contains(BlockedItem(line: nil, reason: .refundInProgress)))
        #expect(preview.blocked.contains(BlockedItem(line: "l1", reason: .alreadyRefunded)))
        #expect(preview.methodsAvailable.isEmpty)
    }

    @Test func previewStillRejectsMalformedOptions() throws {
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000])))
        #expect(refundError { _ = try RefundPlanner.preview(state, Fixtures.options(lines: ["zz"]), context: context) }?.code == .lineNotFound)
        #expect(refundError { _ = try RefundPlanner.preview(state, Fixtures.options(fee: .each(-1)), context: context) }?.code == .invalidAmount)
        #expect(refundError { _ = try RefundPlanner.preview(state, Fixtures.options(fee: .each(1001)), context: context) }?.code == .feeExceedsRefundable)
        let nobody = Fixtures.context(caller: Caller(id: "usr_0", permissions: []))
        #expect(refundError { _ = try RefundPlanner.preview(state, Fixtures.options(), context: nobody) }?.code == .permissionDenied)
    }
}
