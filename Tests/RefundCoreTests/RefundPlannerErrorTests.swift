import Testing

@testable import RefundCore

/// Every coded error the planner decides, with a message naming the field or rule.
@Suite struct RefundPlannerErrorTests {
    let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 2000])))

    private func planError(
        _ state: OrderState, _ options: RefundOptions, context: RefundContext = Fixtures.context(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> RefundError? {
        let error = refundError(sourceLocation: sourceLocation) { _ = try RefundPlanner.plan(state, options, context: context) }
        #expect(error != nil, "expected an error", sourceLocation: sourceLocation)
        return error
    }

    // MARK: Permissions

    struct PermissionCase: Sendable, CustomTestStringConvertible {
        var permission: Permission
        var options: RefundOptions
        var testDescription: String { permission.rawValue }
    }

    static let permissionCases: [PermissionCase] = [
        PermissionCase(permission: .refund, options: Fixtures.options()),
        PermissionCase(permission: .cancel, options: Fixtures.options(method: .none)),
        PermissionCase(permission: .applyCancellationFee, options: Fixtures.options(fee: .each(10))),
        PermissionCase(permission: .overrideFees, options: Fixtures.options(policy: .full)),
        PermissionCase(permission: .selfService, options: Fixtures.options(method: .balance, selfService: true)),
    ]

    @Test(arguments: permissionCases)
    func permissionDenied(_ c: PermissionCase) throws {
        var all = Set(Permission.allCases)
        all.remove(c.permission)
        // Self-service is the order's own customer acting; everything else is staff.
        let id = c.options.selfService ? (state.order.customer ?? "usr_7") : "usr_7"
        let caller = Caller(id: id, permissions: all)
        let error = try #require(planError(state, c.options, context: Fixtures.context(caller: caller)))
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("'\(c.permission.rawValue)'"))
        #expect(error.message.contains(id))
        // With the permission the same request is not refused for permissions.
        let allowed = Caller(id: id, permissions: Set(Permission.allCases))
        let retry = refundError { _ = try RefundPlanner.plan(state, c.options, context: Fixtures.context(caller: allowed)) }
        #expect(retry?.code != .permissionDenied)
    }

    @Test(arguments: Permission.allCases)
    func callerRequireNamesEachPermission(_ permission: Permission) throws {
        let caller = Caller(id: "usr_1", permissions: [])
        let error = try #require(refundError { try caller.require(permission, for: "doing it") })
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains(permission.rawValue))
        #expect(refundError { try Caller(id: "usr_1", permissions: [permission]).require(permission, for: "x") } == nil)
    }

    @Test func staffAndCustomerPermissions() {
        #expect(Caller.staff("s").permissions == Set(Permission.allCases).subtracting([.selfService]))
        #expect(Caller.customer("c").permissions == [.selfService])
    }

    // MARK: Options

    @Test(arguments: ["", "Customer_Request", "has space", String(repeating: "a", count: 65), "é"])
    func invalidReason(_ reason: String) throws {
        var options = Fixtures.options()
        options.reason = reason
        let error = try #require(planError(state, options))
        #expect(error.code == .invalidField)
        #expect(error.message.contains("reason"))
    }

    @Test func validReasonCodes() throws {
        for reason in ["event_cancelled", "a", String(repeating: "z", count: 64), "moderation_2"] {
            var options = Fixtures.options()
            options.reason = reason
            #expect(refundError { _ = try RefundPlanner.plan(state, options, context: Fixtures.context()) } == nil)
        }
    }

    @Test func noteTooLong() throws {
        var options = Fixtures.options()
        options.note = String(repeating: "n", count: 4097)
        let error = try #require(planError(state, options))
        #expect(error.code == .invalidField)
        #expect(error.message.contains("note"))
        options.note = String(repeating: "n", count: 4096)
        #expect(refundError { _ = try RefundPlanner.plan(state, options, context: Fixtures.context()) } == nil)
    }

    @Test(arguments: ["", String(repeating: "k", count: 256)])
    func invalidIdempotencyKey(_ key: String) throws {
        var options = Fixtures.options()
        options.idempotencyKey = key
        let error = try #require(planError(state, options))
        #expect(error.code == .invalidField)
        #expect(error.message.contains("idempotency_key"))
    }

    @Test func emptyLinesList() throws {
        let error = try #require(planError(state, Fixtures.options(lines: [])))
        #expect(error.code == .invalidField)
        #expect(error.message.contains("lines"))
    }

    @Test func feeWithMethodNone() throws {
        let error = try #require(planError(state, Fixtures.options(method: .none, fee: .each(1))))
        #expect(error.code == .invalidField)
        #expect(error.message.contains("fee"))
        #expect(error.message.contains("none"))
    }

    @Test(arguments: [CancellationFee.each(-1), .order(-500), .perLine(["l1": -2])])
    func negativeFee(_ fee: CancellationFee) throws {
        let error = try #require(planError(state, Fixtures.options(fee: fee)))
        #expect(error.code == .invalidAmount)
        #expect(error.message.contains("fee"))
        #expect(error.message.contains("negative"))
    }

    // MARK: Selection

    @Test func unknownLine() throws {
        let error = try #require(planError(state, Fixtures.options(lines: ["l1", "nope"])))
        #expect(error.code == .lineNotFound)
        #expect(error.message.contains("nope"))
    }

    @Test func lineNamedTwice() throws {
        let error = try #require(planError(state, Fixtures.options(lines: ["l2", "l2"])))
        #expect(error.code == .duplicateID)
        #expect(error.message.contains("l2"))
    }

    @Test func perLineFeeForALineNotInTheRefund() throws {
        let error = try #require(planError(state, Fixtures.options(lines: ["l1"], fee: .perLine(["l2": 10]))))
        #expect(error.code == .lineNotFound)
        #expect(error.message.contains("fee.per_line"))
        #expect(error.message.contains("l2"))
    }

    // MARK: Fees

    @Test func eachFeeAboveALinesRefundable() throws {
        let error = try #require(planError(state, Fixtures.options(fee: .each(1001))))
        #expect(error.code == .feeExceedsRefundable)
        #expect(error.message.contains("fee.each"))
        #expect(error.message.contains("l1"))
        // Exactly the refundable is allowed.
        #expect(refundError { _ = try RefundPlanner.plan(state, Fixtures.options(fee: .each(1000)), context: Fixtures.context()) } == nil)
    }

    @Test func perLineFeeAboveTheLinesRefundable() throws {
        let error = try #require(planError(state, Fixtures.options(fee: .perLine(["l1": 10, "l2": 2001]))))
        #expect(error.code == .feeExceedsRefundable)
        #expect(error.message.contains("fee.per_line.l2"))
    }

    @Test func feeCapIsTheRefundableNotTheLinePrice() throws {
        // Without processing fees the line's refundable shrinks, and so does the cap.
        var lines = Fixtures.tickets([1000])
        lines[0].processingFee = 50
        let state = Fixtures.place(Fixtures.order(lines: lines))
        #expect(refundError { _ = try RefundPlanner.plan(state, Fixtures.options(fee: .each(1050)), context: Fixtures.context()) } == nil)
        let error = try #require(planError(state, Fixtures.options(fee: .each(1050), includeProcessingFees: false)))
        #expect(error.code == .feeExceedsRefundable)
    }

    // MARK: Methods

    @Test func balanceNeedsACustomer() throws {
        let boxOffice = Fixtures.place(Fixtures.order(customer: nil, lines: Fixtures.tickets([1000]), tenders: [.cash]))
        let error = try #require(planError(boxOffice, Fixtures.options(method: .balance)))
        #expect(error.code == .methodNotAvailable)
        #expect(error.message.contains("balance"))
        #expect(error.message.contains("box-office"))
    }

    @Test func balanceNotForAZeroValueRefund() throws {
        let state = Fixtures.place(Fixtures.order(lines: Fixtures.tickets([1000, 0])))
        let error = try #require(planError(state, Fixtures.options(lines: ["l2"], method: .balance)))
        #expect(error.code == .methodNotAvailable)
        #expect(error.message.contains("zero-value"))
        // The same zero-value line refunds with `original` (no transactions).
        let plan = try RefundPlanner.plan(state, Fixtures.options(lines: ["l2"]), context: Fixtures.context())
        #expect(plan.amount == 0)
        #expect(plan.transactions.isEmpty)
    }

    // MARK: Nothing to refund

    @Test func nothingToRefundListsWhatWasSkipped() throws {
        var lines = Fixtures.tickets([1000, 500])
        lines[0].kind = .deposit
        lines[1].transferred = true
        let state = Fixtures.place(Fixtures.order(lines: lines))
        let error = try #require(planError(state, Fixtures.options()))
        #expect(error.code == .nothingToRefund)
        #expect(error.message.contains("ord_1"))
        #expect(
            error.blocked == [
                BlockedItem(line: "l1", reason: .depositNotRefundable),
                BlockedItem(line: "l2", reason: .transferredAfterCheckout),
            ])
    }

    @Test func nothingToRefundOnceEveryLineIsCancelled() throws {
        var state = state
        try state.refund(Fixtures.options(method: .none))
        let error = try #require(planError(state, Fixtures.options(method: .none)))
        #expect(error.code == .nothingToRefund)
    }
}
