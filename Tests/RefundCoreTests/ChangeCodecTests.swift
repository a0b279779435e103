import Testing

@testable import RefundCore

/// Values for the codec tests: every optional both nil and set, every enum case somewhere.
enum CodecFixtures {
    static let t0 = Timestamp(milliseconds: 1_795_341_600_000)
    static func at(_ minutes: Int64) -> Timestamp { t0.adding(milliseconds: minutes * 60_000) }

    static let fullOrder = Order(
        id: "ord_42", event: "evt_7", eventStartsAt: at(10_000), customer: "cus_9", email: "a@example.com",
        currency: .gbp, channel: .boxOffice, source: .comp, parent: "ord_41", frozen: true, syncPending: true,
        bookingFee: 150,
        lines: [
            OrderLine(
                id: "l1", kind: .ticket, ticketType: "tt_ga", price: 5000, discount: 500, tax: 750, processingFee: 135,
                platformFee: 99, transferred: true, claimed: true, holder: "att_7"),
            OrderLine(id: "l2", kind: .walletTopUp, price: 2000),
            OrderLine(id: "l3", kind: .giftVoucher, ticketType: "tt_vip", price: -1, discount: Int64.min, tax: Int64.max),
        ],
        tenders: [
            Tender(id: "t1", method: .card, amount: 3000, gatewayRef: "pi_1"),
            Tender(id: "t2", method: .wallet, amount: 1884),
            Tender(id: "t3", method: .bankTransfer, amount: 0),
        ])

    static let minimalOrder = Order(id: "o", event: "e", currency: .jpy, lines: [], tenders: [])

    static let fullTransaction = RefundTransaction(
        tender: "t1", method: .card, amount: 2540, status: .failed, attempts: 3, nextAttemptAt: at(5),
        gatewayRef: "re_1",
        failures: [
            FailedAttempt(attempt: 1, at: at(1), code: "card_declined", retryable: true),
            FailedAttempt(attempt: 2, at: at(2), code: "expired_card", retryable: false),
        ], settledAt: at(3))

    static let minimalTransaction = RefundTransaction(tender: nil, method: .balance, amount: 0, status: .pending, attempts: 0)

    static let fullRefund = Refund(
        id: "rf_1_ord_42", orderID: "ord_42", method: .original, amount: 4135, feeRetained: 500, tax: 669,
        bookingFee: 150, reason: "customer_request", note: "Ünïcödé note ✓", createdAt: at(1), createdBy: "staff_1",
        restock: true,
        lines: [
            RefundLine(line: "l1", amount: 4135, feeRetained: 500, tax: 669),
            RefundLine(line: "l2", amount: -7, feeRetained: 0, tax: 0),
        ],
        transactions: [
            fullTransaction, minimalTransaction,
            RefundTransaction(tender: "t2", method: .wallet, amount: 1595, status: .succeeded, attempts: 1),
        ],
        recovery: Recovery(action: .refundedExternally, note: "paid by bank", by: "staff_2", at: at(60)),
        jobID: "job_1", requestID: "rq_1_ord_42", resentAt: [at(70), at(80)], notify: false,
        emailText: "Sorry — the show is off ✓")

    static let minimalRefund = Refund(
        id: "r", orderID: "o", method: .none, amount: 0, feeRetained: 0, tax: 0, bookingFee: 0, reason: "", note: nil,
        createdAt: Timestamp(milliseconds: -1), createdBy: "", restock: false, lines: [], transactions: [])

    static let fullOptions = RefundOptions(
        lines: ["l1", "l2"], method: .balance, fee: .perLine(["l2": 10, "l1": 1000, "l10": 0]),
        includeProcessingFees: false, includePlatformFees: true, includeBookingFee: true, policy: .full,
        reason: "event_cancelled", note: "n", restock: false, notify: false, emailText: "Sorry", idempotencyKey: "key-1",
        selfService: true)

    static let minimalOptions = RefundOptions(method: .offline, reason: "r")

    static let fullRequest = RefundRequest(
        id: "rq_1_ord_42", orderID: "ord_42", lines: ["l1"], reason: "cannot attend", requestedBy: "cus_9",
        createdAt: at(2), status: .approved, adminNote: "ok", decidedBy: "staff_1", decidedAt: at(3),
        refundID: "rf_2_ord_42")

    static let minimalRequest = RefundRequest(
        id: "rq", orderID: "o", lines: nil, reason: "", requestedBy: "c", createdAt: t0, status: .open)

    static let results: [AttemptResult] = [
        .succeeded(reference: "re_9"), .succeeded(reference: nil), .accepted(reference: "re_8"),
        .accepted(reference: nil), .failed(code: "timeout", retryable: true, retryAt: at(15)),
        .failed(code: "", retryable: false, retryAt: nil), .unknown(reason: "timeout", retryAt: at(16)),
    ]

    /// Every OrderChange case, each optional field both nil and set, every fee and result variant.
    static var allChanges: [OrderChange] {
        var changes: [OrderChange] = [
            .placed(fullOrder, at: t0, by: "checkout"),
            .placed(minimalOrder, at: Timestamp(milliseconds: Int64.min), by: ""),
            .replaced(fullOrder, at: at(1), by: "staff_1"),
            .replaced(minimalOrder, at: Timestamp(milliseconds: Int64.max), by: "x"),
            .refundCreated(fullRefund, options: fullOptions),
            .refundCreated(fullRefund, options: nil),
            .refundCreated(minimalRefund, options: minimalOptions),
        ]
        for fee in [CancellationFee.each(250), .order(-3), .perLine([:])] {
            var options = fullOptions
            options.fee = fee
            changes.append(.refundCreated(minimalRefund, options: options))
        }
        for (i, result) in results.enumerated() {
            changes.append(.attemptResult(refund: i + 1, transaction: i, result: result, at: at(Int64(i))))
            changes.append(.settled(refund: Int.max - i, transaction: -i, result: result, at: at(Int64(-i))))
        }
        changes += [
            .retried(refund: 1, at: at(20), by: "staff_1"),
            .recovered(refund: 2, Recovery(action: .contactedBuyer, note: "", by: "s", at: t0)),
            .recovered(refund: 3, Recovery(action: .writtenOff, note: "bad debt", by: "s", at: at(1))),
            .recovered(refund: 4, Recovery(action: .other, note: "?", by: "s", at: at(2))),
            // Recovery logs beyond the one-action shape older data has (tag 2): several actions, a retry mark.
            .refundCreated(
                with(fullRefund) {
                    $0.recoveries = [
                        Recovery(action: .contactedBuyer, note: "a", by: "s", at: at(3)),
                        Recovery(action: .other, note: "", by: "t", at: at(4)),
                        Recovery(action: .writtenOff, note: "c", by: "s", at: at(5)),
                    ]
                    $0.recoveriesBeforeRetry = 2
                }, options: nil),
            .refundCreated(
                with(minimalRefund) {
                    $0.recoveries = [Recovery(action: .contactedBuyer, note: "", by: "", at: t0)]
                    $0.recoveriesBeforeRetry = 1
                }, options: nil),
            .refundCreated(
                with(minimalRefund) {
                    $0.recoveries = [
                        Recovery(action: .other, note: "x", by: "y", at: t0), Recovery(action: .other, note: "x", by: "y", at: t0),
                    ]
                }, options: nil),
            .disputeOpened(reason: "fraudulent", at: at(30), by: "gateway"),
            .disputeOpened(reason: nil, at: at(31), by: "gateway"),
            .disputeClosed(outcome: .won, note: "evidence accepted", at: at(40), by: "staff_1"),
            .disputeClosed(outcome: .lost, note: nil, at: at(41), by: "staff_1"),
            .disputeClosed(outcome: .withdrawn, note: "", at: at(42), by: "staff_1"),
            .requestCreated(fullRequest),
            .requestCreated(minimalRequest),
            .requestDecided(request: 1, approved: true, note: "fine", refundID: "rf_2_ord_42", at: at(50), by: "staff_1"),
            .requestDecided(request: 2, approved: false, note: nil, refundID: nil, at: at(51), by: "staff_1"),
            .confirmationResent(refund: 1, at: at(60), by: "staff_1"),
            .lateAnswer(refund: 1, LateAnswer(transaction: 0, attempt: 1, succeeded: true, reference: "re_1", failureCode: nil, at: at(61))),
            .lateAnswer(refund: 2, LateAnswer(transaction: 3, attempt: 9, succeeded: false, reference: nil, failureCode: "x", at: at(62))),
            .factsUpdated(
                OrderFactsUpdate(
                    frozen: true, syncPending: false,
                    lines: [
                        OrderFactsUpdate.Line(id: "l1", transferred: false),
                        OrderFactsUpdate.Line(id: "l2", transferred: true, claimed: true),
                        OrderFactsUpdate.Line(id: "l3", claimed: false),
                    ]), at: at(63), by: "checkout"),
            .factsUpdated(OrderFactsUpdate(syncPending: true), at: at(64), by: "sync"),
            .ticketTransferred(TicketTransfer(line: "l1", from: nil, to: "att_8", at: at(65), by: "box_office")),
            .ticketTransferred(TicketTransfer(line: "l1", from: "att_8", to: nil, at: at(66), by: "")),
            .ticketTransferred(
                TicketTransfer(line: "l2", from: nil, to: "att_9", at: at(67), by: "b", status: .pending)),
            .ticketTransferred(
                TicketTransfer(
                    line: "l2", from: "a", to: "b", at: at(68), by: "b", status: .cancelled, decidedAt: at(69), decidedBy: "c")),
            .transferDecided(line: "l2", accepted: true, at: at(70), by: "att_9"),
            .transferDecided(line: "", accepted: false, at: Timestamp(milliseconds: Int64.min), by: ""),
        ]
        for channel in Channel.allCases { changes.append(.placed(with(fullOrder) { $0.channel = channel }, at: t0, by: "c")) }
        for source in OrderSource.allCases { changes.append(.placed(with(minimalOrder) { $0.source = source }, at: t0, by: "c")) }
        let kinds = LineKind.allCases.map { OrderLine(id: "k_\($0.rawValue)", kind: $0, price: 1) }
        let tenders = TenderMethod.allCases.map { Tender(id: "t_\($0.rawValue)", method: $0, amount: 1) }
        changes.append(.placed(with(minimalOrder) { $0.lines = kinds; $0.tenders = tenders }, at: t0, by: "c"))
        let methods: [TransactionMethod] = [.card, .wallet, .giftCard, .cash, .bankTransfer, .other, .balance]
        let statuses: [TransactionStatus] = [.pending, .succeeded, .failed]
        let transactions = methods.enumerated().map { i, method in
            RefundTransaction(tender: nil, method: method, amount: 1, status: statuses[i % 3], attempts: i)
        }
        for method in RefundMethod.allCases {
            changes.append(.refundCreated(with(minimalRefund) { $0.method = method; $0.transactions = transactions }, options: nil))
        }
        return changes
    }

    static func with<T>(_ value: T, _ change: (inout T) -> Void) -> T {
        var copy = value
        change(&copy)
        return copy
    }

    /// The OrderChangeTag of a change; the exhaustive switch makes a new case fail to compile here until a test
    /// value covers it.
    static func tag(_ change: OrderChange) -> UInt8 {
        switch change {
        case .placed: OrderChangeTag.placed
        case .replaced: OrderChangeTag.replaced
        case .refundCreated: OrderChangeTag.refundCreated
        case .attemptResult: OrderChangeTag.attemptResult
        case .settled: OrderChangeTag.settled
        case .retried: OrderChangeTag.retried
        case .recovered: OrderChangeTag.recovered
        case .disputeOpened: OrderChangeTag.disputeOpened
        case .disputeClosed: OrderChangeTag.disputeClosed
        case .requestCreated: OrderChangeTag.requestCreated
        case .requestDecided: OrderChangeTag.requestDecided
        case .confirmationResent: OrderChangeTag.confirmationResent
        case .lateAnswer: OrderChangeTag.lateAnswer
        case .factsUpdated: OrderChangeTag.factsUpdated
        case .ticketTransferred: OrderChangeTag.ticketTransferred
        case .transferDecided: OrderChangeTag.transferDecided
        }
    }

    // MARK: A realistic order history

    /// 3 lines, card + wallet.
    static let order = Order(
        id: "ord_7", event: "evt_1", eventStartsAt: at(20_000), customer: "cus_1", email: "b@example.com",
        currency: .eur, bookingFee: 200,
        lines: [
            OrderLine(id: "l1", ticketType: "tt_ga", price: 5000, discount: 500, tax: 750, processingFee: 100),
            OrderLine(id: "l2", ticketType: "tt_ga", price: 5000, processingFee: 100),
            OrderLine(id: "l3", kind: .product, price: 1500, tax: 250),
        ],
        tenders: [
            Tender(id: "t1", method: .card, amount: 8000, gatewayRef: "pi_7"),
            Tender(id: "t2", method: .wallet, amount: 4400),
        ])

    static let firstRefundOptions = RefundOptions(
        lines: ["l1", "l2"], method: .original, fee: .perLine(["l2": 300, "l1": 200]), reason: "customer_request",
        idempotencyKey: "idem-b")

    static let firstRefund = Refund(
        id: "rf_1_ord_7", orderID: "ord_7", method: .original, amount: 9300, feeRetained: 500, tax: 700, bookingFee: 0,
        reason: "customer_request", note: nil, createdAt: at(1), createdBy: "staff_1", restock: true,
        lines: [
            RefundLine(line: "l1", amount: 4400, feeRetained: 200, tax: 600),
            RefundLine(line: "l2", amount: 4900, feeRetained: 300, tax: 100),
        ],
        transactions: [
            RefundTransaction(tender: "t1", method: .card, amount: 6000, status: .pending, attempts: 0, nextAttemptAt: at(1)),
            RefundTransaction(tender: "t2", method: .wallet, amount: 3300, status: .succeeded, attempts: 1, settledAt: at(1)),
        ])

    static let secondRefund = Refund(
        id: "rf_2_ord_7", orderID: "ord_7", method: .original, amount: 1700, feeRetained: 0, tax: 250, bookingFee: 200,
        reason: "requested", note: "from request", createdAt: at(90), createdBy: "staff_2", restock: false,
        lines: [RefundLine(line: "l3", amount: 1500, feeRetained: 0, tax: 250)],
        transactions: [
            RefundTransaction(tender: "t1", method: .card, amount: 1000, status: .pending, attempts: 0, nextAttemptAt: at(90)),
            RefundTransaction(tender: "t2", method: .wallet, amount: 700, status: .succeeded, attempts: 1, settledAt: at(90)),
        ],
        requestID: "rq_1_ord_7", notify: false, emailText: "We are sorry.")

    static let history: [OrderChange] = [
        .placed(order, at: t0, by: "checkout"),
        .refundCreated(firstRefund, options: firstRefundOptions),
        .attemptResult(refund: 1, transaction: 0, result: .failed(code: "timeout", retryable: true, retryAt: at(5)), at: at(2)),
        .attemptResult(refund: 1, transaction: 0, result: .failed(code: "card_declined", retryable: false, retryAt: nil), at: at(6)),
        .retried(refund: 1, at: at(10), by: "staff_1"),
        .attemptResult(refund: 1, transaction: 0, result: .accepted(reference: "re_1"), at: at(11)),
        .settled(refund: 1, transaction: 0, result: .failed(code: "lost_card", retryable: false, retryAt: nil), at: at(20)),
        .recovered(refund: 1, Recovery(action: .refundedExternally, note: "bank transfer", by: "staff_1", at: at(30))),
        .disputeOpened(reason: "fraudulent", at: at(40), by: "gateway"),
        .disputeClosed(outcome: .won, note: "evidence", at: at(50), by: "staff_1"),
        .requestCreated(
            RefundRequest(id: "rq_1_ord_7", orderID: "ord_7", lines: ["l3"], reason: "duplicate", requestedBy: "cus_1", createdAt: at(60))),
        .requestDecided(request: 1, approved: true, note: "ok", refundID: "rf_2_ord_7", at: at(90), by: "staff_2"),
        .refundCreated(secondRefund, options: nil),
        .attemptResult(refund: 2, transaction: 0, result: .succeeded(reference: "re_2"), at: at(91)),
        .confirmationResent(refund: 2, at: at(100), by: "staff_2"),
        .confirmationResent(refund: 1, at: at(101), by: "staff_1"),
        .lateAnswer(refund: 2, LateAnswer(transaction: 0, attempt: 1, succeeded: true, reference: "re_2b", failureCode: nil, at: at(102))),
        .factsUpdated(OrderFactsUpdate(frozen: true, lines: [OrderFactsUpdate.Line(id: "l1", transferred: true)]), at: at(103), by: "sync"),
    ]

    static func state(after changes: some Sequence<OrderChange>) -> OrderState {
        var state = OrderState(placing: minimalOrder, at: t0, by: "x")
        for change in changes { state.apply(change) }
        return state
    }
}

/// Decodes `bytes`: nil when it throws; when it decodes, the bytes must be the canonical encoding of the result.
private func decodeCanonically(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> (
    orderID: String, changes: [OrderChange]
)? {
    guard let record = try? ChangeCodec.decode(bytes) else { return nil }
    // An older version only has to decode: it is written again in the current one.
    guard bytes.first == ChangeCodec.version else { return record }
    #expect(
        ChangeCodec.encode(orderID: record.orderID, record.changes) == bytes, "decoded but not canonical",
        sourceLocation: sourceLocation)
    return record
}

private func decodingError(_ body: () throws(BinaryDecodingError) -> Void) -> BinaryDecodingError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

@Suite struct ChangeCodecTests {
    let all = CodecFixtures.allChanges

    // MARK: Round trips

    @Test func everyChangeCaseIsCovered() {
        let tags = Set(all.map(CodecFixtures.tag))
        #expect(tags == Set(UInt8(1)...16))
    }

    @Test func eachChangeRoundTrips() throws {
        for (i, change) in all.enumerated() {
            let bytes = ChangeCodec.encode(orderID: "ord_\(i)", [change])
            #expect(bytes.first == ChangeCodec.version)
            let decoded = try ChangeCodec.decode(bytes)
            #expect(decoded.orderID == "ord_\(i)")
            #expect(decoded.changes == [change], "change \(i): \(change)")
        }
    }

    @Test func wholeRecordRoundTrips() throws {
        let bytes = ChangeCodec.encode(orderID: "ord_42", all)
        let decoded = try ChangeCodec.decode(bytes)
        #expect(decoded.orderID == "ord_42")
        #expect(decoded.changes == all)
        // An empty record too.
        let empty = try ChangeCodec.decode(ChangeCodec.encode(orderID: "", []))
        #expect(empty.orderID == "" && empty.changes.isEmpty)
    }

    @Test func recordsAppendedToOneWriterDecodeInSequence() throws {
        var writer = BinaryWriter(capacity: 0)
        writer.u32(0xDEAD_BEEF)
        ChangeCodec.encode(orderID: "a", Array(all.prefix(5)), into: &writer)
        ChangeCodec.encode(orderID: "b", Array(all.suffix(5)), into: &writer)
        var reader = BinaryReader(writer.bytes)
        #expect(try reader.u32() == 0xDEAD_BEEF)
        let first = try ChangeCodec.decode(from: &reader)
        let second = try ChangeCodec.decode(from: &reader)
        try reader.expectEnd()
        #expect(first.orderID == "a" && first.changes == Array(all.prefix(5)))
        #expect(second.orderID == "b" && second.changes == Array(all.suffix(5)))
        // The slice overload sees the same bytes as the array one.
        let standalone = ChangeCodec.encode(orderID: "a", Array(all.prefix(5)))
        #expect(writer.bytes[4..<(4 + standalone.count)].elementsEqual(standalone))
        #expect(try ChangeCodec.decode(writer.bytes[4..<(4 + standalone.count)]).changes == Array(all.prefix(5)))
    }

    @Test func callerRoundTripsWithPermissionsInCodeOrder() throws {
        let callers = [
            Caller.staff("staff_1"), Caller.customer("cus_1"), Caller(id: "nobody", permissions: []),
            Caller(id: "all", permissions: Set(Permission.allCases)),
        ]
        for caller in callers {
            var writer = BinaryWriter()
            writer.write(caller)
            var reader = BinaryReader(writer.bytes)
            #expect(try reader.readCaller() == caller)
            try reader.expectEnd()
        }
        // Codes out of order or repeated are not canonical.
        for codes: [UInt8] in [[2, 1], [1, 1]] {
            var writer = BinaryWriter()
            writer.string("c")
            writer.length(codes.count)
            for code in codes { writer.u8(code) }
            var reader = BinaryReader(writer.bytes)
            #expect(decodingError { () throws(BinaryDecodingError) in _ = try reader.readCaller() } != nil)
        }
    }

    // MARK: Determinism

    @Test func encodingIsDeterministic() {
        #expect(ChangeCodec.encode(orderID: "x", all) == ChangeCodec.encode(orderID: "x", all))
        var writer = BinaryWriter()
        ChangeCodec.encode(orderID: "x", all, into: &writer)
        #expect(writer.bytes == ChangeCodec.encode(orderID: "x", all))
    }

    /// The fast sink, the byte counter and a plain BinaryWriter agree, including when a record outgrows the size
    /// estimate (the fallback paths).
    @Test func everySinkWritesTheSameBytes() throws {
        let long = String(repeating: "é✓x", count: 5_000)
        var bigRefund = CodecFixtures.fullRefund
        bigRefund.reason = long
        var bigOptions = CodecFixtures.fullOptions
        bigOptions.fee = .perLine(Dictionary(uniqueKeysWithValues: (0..<300).map { ("line_\($0)", Int64($0)) }))
        let cases: [[OrderChange]] = all.map { [$0] } + [
            all, [.refundCreated(bigRefund, options: bigOptions)], [.disputeOpened(reason: long, at: CodecFixtures.t0, by: long)],
        ]
        for changes in cases {
            var plain = BinaryWriter(capacity: 0)
            plain.u8(ChangeCodec.version)
            plain.string("ord")
            plain.length(changes.count)
            for change in changes { plain.write(change) }
            var counter = ByteCounter()
            counter.u8(ChangeCodec.version)
            counter.string("ord")
            counter.length(changes.count)
            for change in changes { counter.write(change) }

            let fast = ChangeCodec.encode(orderID: "ord", changes)
            #expect(fast == plain.bytes)
            #expect(counter.count == fast.count)
            var writer = BinaryWriter(capacity: 0)
            writer.u8(7)
            ChangeCodec.encode(orderID: "ord", changes, into: &writer)
            #expect(writer.bytes == [7] + fast)
            #expect(try ChangeCodec.decode(fast).changes == changes)
        }
        #expect(ChangeCodec.estimatedSize(orderID: "ord", [.disputeOpened(reason: long, at: CodecFixtures.t0, by: "s")]) < long.utf8.count)
    }

    @Test func perLineFeeOrderDoesNotMatter() throws {
        let keys = (0..<50).map { "line_\($0)" }
        var forward: [String: Int64] = [:]
        for (i, key) in keys.enumerated() { forward[key] = Int64(i * 7) }
        // Same content, different insertion order and capacity: a different iteration order.
        var backward: [String: Int64] = [:]
        backward.reserveCapacity(4096)
        for (i, key) in keys.enumerated().reversed() { backward[key] = Int64(i * 7) }
        #expect(forward == backward)

        func record(_ fees: [String: Int64]) -> [UInt8] {
            var options = CodecFixtures.minimalOptions
            options.fee = .perLine(fees)
            return ChangeCodec.encode(orderID: "o", [.refundCreated(CodecFixtures.minimalRefund, options: options)])
        }
        #expect(record(forward) == record(backward))
        let decoded = try ChangeCodec.decode(record(backward))
        guard case .refundCreated(_, let options?) = decoded.changes.first, case .perLine(let fees)? = options.fee else {
            Issue.record("not a per-line fee: \(decoded)")
            return
        }
        #expect(fees == forward)
    }

    @Test func perLineFeeKeysOutOfOrderAreRejected() {
        var writer = BinaryWriter()
        writer.u8(CancellationFeeTag.perLine)
        writer.length(2)
        writer.string("l2")
        writer.svarint(1)
        writer.string("l1")
        writer.svarint(2)
        var reader = BinaryReader(writer.bytes)
        let error = decodingError { () throws(BinaryDecodingError) in _ = try reader.readCancellationFee() }
        #expect(error?.message.contains("ascending") == true)
    }

    // MARK: Corrupt input

    @Test func everyTruncationThrows() {
        let bytes = ChangeCodec.encode(orderID: "ord_42", all)
        for length in 0..<bytes.count {
            #expect(throws: BinaryDecodingError.self, "prefix \(length)") {
                _ = try ChangeCodec.decode(Array(bytes[0..<length]))
            }
        }
        // And for each single-change record (shorter, so the cut lands inside every kind of field).
        for change in all {
            let one = ChangeCodec.encode(orderID: "o", [change])
            for length in 0..<one.count {
                #expect(throws: BinaryDecodingError.self) { _ = try ChangeCodec.decode(one[0..<length]) }
            }
        }
    }

    @Test func trailingBytesThrow() {
        let bytes = ChangeCodec.encode(orderID: "o", Array(all.prefix(3))) + [0]
        #expect(throws: BinaryDecodingError.self) { _ = try ChangeCodec.decode(bytes) }
    }

    @Test func unknownVersionThrows() {
        var bytes = ChangeCodec.encode(orderID: "o", [all[0]])
        for version: UInt8 in [0, ChangeCodec.version + 1, 255] {
            bytes[0] = version
            let error = decodingError { () throws(BinaryDecodingError) in _ = try ChangeCodec.decode(bytes) }
            #expect(error?.message == "unknown change record version \(version)")
            #expect(error?.offset == 0)
        }
    }

    @Test func unknownTagThrows() {
        // version, "o", one change, then the tag at offset 4.
        var bytes = ChangeCodec.encode(orderID: "o", [.retried(refund: 1, at: CodecFixtures.t0, by: "s")])
        #expect(bytes[4] == OrderChangeTag.retried)
        for tag in [0] + Array(17...255) {
            bytes[4] = UInt8(tag)
            let error = decodingError { () throws(BinaryDecodingError) in _ = try ChangeCodec.decode(bytes) }
            #expect(error?.message == "unknown change tag \(tag)")
            #expect(error?.offset == 4)
        }
    }

    @Test func unknownEnumCodesThrowEndToEnd() {
        // .recovered: tag at 4, refund number at 5, recovery action at 6.
        var recovered = ChangeCodec.encode(
            orderID: "o", [.recovered(refund: 1, Recovery(action: .other, note: "", by: "s", at: CodecFixtures.t0))])
        recovered[6] = 4
        var error = decodingError { () throws(BinaryDecodingError) in _ = try ChangeCodec.decode(recovered) }
        #expect(error?.message == "unknown recovery action code 4")

        // .disputeClosed: outcome at 5.
        var closed = ChangeCodec.encode(
            orderID: "o", [.disputeClosed(outcome: .won, note: nil, at: CodecFixtures.t0, by: "s")])
        closed[5] = 3
        error = decodingError { () throws(BinaryDecodingError) in _ = try ChangeCodec.decode(closed) }
        #expect(error?.message == "unknown dispute outcome code 3")

        // .attemptResult: refund 5, transaction 6, result tag 7.
        var attempt = ChangeCodec.encode(
            orderID: "o",
            [.attemptResult(refund: 1, transaction: 0, result: .succeeded(reference: nil), at: CodecFixtures.t0)])
        attempt[7] = 4
        error = decodingError { () throws(BinaryDecodingError) in _ = try ChangeCodec.decode(attempt) }
        #expect(error?.message == "unknown attempt result tag 4")

        // .refundCreated of the minimal refund: tag 4, id "r" 5–6, order id "o" 7–8, method at 9.
        var created = ChangeCodec.encode(orderID: "o", [.refundCreated(CodecFixtures.minimalRefund, options: nil)])
        #expect(created[9] == RefundMethod.none.wireCode)
        created[9] = 200
        error = decodingError { () throws(BinaryDecodingError) in _ = try ChangeCodec.decode(created) }
        #expect(error?.message == "unknown refund method code 200")

        // An unknown currency code.
        var placed = ChangeCodec.encode(orderID: "o", [.placed(CodecFixtures.minimalOrder, at: CodecFixtures.t0, by: "c")])
        let jpy = Array("JPY".utf8)
        guard let at = (0...(placed.count - 3)).first(where: { placed[$0..<($0 + 3)].elementsEqual(jpy) }) else {
            Issue.record("no currency in \(placed)")
            return
        }
        placed.replaceSubrange(at..<(at + 3), with: Array("ZZZ".utf8))
        error = decodingError { () throws(BinaryDecodingError) in _ = try ChangeCodec.decode(placed) }
        #expect(error?.message == "unknown currency 'ZZZ'")
    }

    /// Every code table: each case maps to a distinct code that maps back, and every other byte is unknown.
    @Test func codeTablesAreBijective() {
        func check<T: Hashable>(_ name: String, _ cases: [T], _ code: (T) -> UInt8, _ decode: (UInt8) -> T?) {
            let codes = cases.map(code)
            #expect(Set(codes).count == cases.count, "\(name): duplicate codes")
            for value in cases { #expect(decode(code(value)) == value, "\(name) \(value)") }
            for raw in UInt8.min...UInt8.max where !codes.contains(raw) {
                #expect(decode(raw) == nil, "\(name) code \(raw) should be unknown")
            }
        }
        check("channel", Channel.allCases, \.wireCode, Channel.init(wireCode:))
        check("source", OrderSource.allCases, \.wireCode, OrderSource.init(wireCode:))
        check("line kind", LineKind.allCases, \.wireCode, LineKind.init(wireCode:))
        check("tender method", TenderMethod.allCases, \.wireCode, TenderMethod.init(wireCode:))
        check("status", [TransactionStatus.pending, .succeeded, .failed], \.wireCode, TransactionStatus.init(wireCode:))
        check(
            "transaction method", [TransactionMethod.card, .wallet, .giftCard, .cash, .bankTransfer, .other, .balance],
            \.wireCode, TransactionMethod.init(wireCode:))
        check("recovery", RecoveryAction.allCases, \.wireCode, RecoveryAction.init(wireCode:))
        check("refund method", RefundMethod.allCases, \.wireCode, RefundMethod.init(wireCode:))
        check("policy", RefundPolicy.allCases, \.wireCode, RefundPolicy.init(wireCode:))
        check("permission", Permission.allCases, \.wireCode, Permission.init(wireCode:))
        check("outcome", DisputeOutcome.allCases, \.wireCode, DisputeOutcome.init(wireCode:))
        check(
            "request status", [RefundRequest.Status.open, .approved, .declined], \.wireCode,
            RefundRequest.Status.init(wireCode:))
        check("line status", [LineStatus.active, .refunded, .cancelled], \.wireCode, LineStatus.init(wireCode:))
        let kinds: [TimelineEntry.Kind] = [
            .orderPlaced, .orderReplaced, .refundCreated, .cancellationCreated, .attemptSucceeded, .attemptAccepted,
            .attemptFailed, .retryScheduled, .refundRetried, .refundRecovered, .disputeOpened, .disputeClosed,
            .requestCreated, .requestApproved, .requestDeclined, .confirmationResent, .attemptUnknown, .lateAnswer,
            .orderUpdated, .ticketTransferred, .transferPending, .transferCancelled,
        ]
        check("timeline kind", kinds, \.wireCode, TimelineEntry.Kind.init(wireCode:))
        check("transfer status", TicketTransfer.Status.allCases, \.wireCode, TicketTransfer.Status.init(wireCode:))
    }

    /// Pinned bytes: a change to the format shows up here (and needs a new version).
    @Test func formatIsPinned() {
        let bytes = ChangeCodec.encode(
            orderID: "o",
            [.attemptResult(
                refund: 1, transaction: 0, result: .failed(code: "x", retryable: true, retryAt: Timestamp(milliseconds: 2)),
                at: Timestamp(milliseconds: -1))])
        #expect(bytes == [4, 1, 0x6F, 1, 4, 2, 0, 2, 1, 0x78, 1, 1, 4, 1])
    }

    /// Version 3 ends every order line with its holder (`bool` + string), and a ticket transfer is tag 15.
    @Test func holdersAndTransfersArePinned() throws {
        let line = OrderLine(id: "l", price: 1, holder: "h")
        let order = Order(id: "o", event: "e", currency: .gbp, lines: [line], tenders: [])
        var writer = BinaryWriter(capacity: 64)
        writer.write(line)
        #expect(writer.take() == [1, 0x6C, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 1, 0x68])
        let transfer = ChangeCodec.encode(
            orderID: "o", [.ticketTransferred(TicketTransfer(line: "l", from: nil, to: "h", at: Timestamp(milliseconds: 1), by: "b"))])
        // line, from (none), to, at, by, status (completed), decided at (none), decided by (none).
        #expect(transfer == [4, 1, 0x6F, 1, 15, 1, 0x6C, 0, 1, 1, 0x68, 2, 1, 0x62, 0, 0, 0])
        // Version 3 wrote a transfer without its status (always completed); version 2 had no transfers.
        var three = transfer
        three[0] = 3
        three.removeLast(3)
        #expect(try ChangeCodec.decode(three).changes == [
            .ticketTransferred(TicketTransfer(line: "l", from: nil, to: "h", at: Timestamp(milliseconds: 1), by: "b"))
        ])
        var two = three
        two[0] = 2
        #expect(throws: BinaryDecodingError.self) { _ = try ChangeCodec.decode(two) }
        let decided = ChangeCodec.encode(orderID: "o", [.transferDecided(line: "l", accepted: true, at: Timestamp(milliseconds: 1), by: "b")])
        var decidedThree = decided
        decidedThree[0] = 3
        #expect(throws: BinaryDecodingError.self) { _ = try ChangeCodec.decode(decidedThree) }
        // A version 2 record of the same order reads with no holder.
        var old = ChangeCodec.encode(orderID: "o", [.placed(order, at: Timestamp(milliseconds: 0), by: "c")])
        let holderBytes: [UInt8] = [1, 1, 0x68]
        let range = try #require(old.firstRange(of: holderBytes))
        old.replaceSubrange(range, with: [0])
        old.removeSubrange(range.lowerBound..<(range.lowerBound + 1))
        old[0] = 2
        let decoded = try ChangeCodec.decode(old)
        guard case .placed(let placed, _, _)? = decoded.changes.first else {
            Issue.record("not a placed order: \(decoded.changes)")
            return
        }
        #expect(placed.lines[0].holder == nil && placed.lines[0].id == "l")
    }

    /// Version 2 ends every refund with its buyer notice: notify, then the optional email text.
    @Test func refundNoticeIsPinned() {
        var plain = BinaryWriter(capacity: 64)
        plain.write(CodecFixtures.minimalRefund)
        #expect(plain.take().suffix(2) == [1, 0])
        var told = BinaryWriter(capacity: 64)
        told.write(CodecFixtures.with(CodecFixtures.minimalRefund) { $0.notify = false; $0.emailText = "Hi" })
        #expect(told.take().suffix(5) == [0, 1, 2, 0x48, 0x69])
    }

    /// A version 1 record (no notice on its refunds) still reads: notify from the options it recorded (version 1
    /// recorded them whenever notify was off), true without them, and no email text, whatever the options said.
    @Test func version1RefundsTakeNotifyFromTheirOptions() throws {
        func v1Record(_ refund: Refund, _ options: RefundOptions?) -> [UInt8] {
            var body = BinaryWriter(capacity: 128)
            body.write(refund)
            let refundBytes = body.take()
            var w = BinaryWriter(capacity: 160)
            w.u8(1)
            w.string("o")
            w.length(2)
            w.u8(OrderChangeTag.refundCreated)
            w.raw(refundBytes.dropLast(2))  // a plain refund's notice is [1, 0]: v1 had none
            if let options {
                w.bool(true)
                w.write(options)
            } else {
                w.bool(false)
            }
            w.write(OrderChange.retried(refund: 1, at: CodecFixtures.t0, by: "s"))
            return w.take()
        }
        var quiet = CodecFixtures.fullOptions
        quiet.notify = false
        quiet.emailText = "Sorry"
        for (options, notify) in [(quiet, false), (CodecFixtures.minimalOptions, true), (nil, true)] as [(RefundOptions?, Bool)] {
            let record = try ChangeCodec.decode(v1Record(CodecFixtures.minimalRefund, options))
            guard case .refundCreated(let refund, let read) = record.changes.first else {
                Issue.record("not a refund_created")
                continue
            }
            #expect(refund.notify == notify && refund.emailText == nil && read == options)
            #expect(record.changes.last == .retried(refund: 1, at: CodecFixtures.t0, by: "s"))
            // Written again in the current version, with the notice it was read with.
            let again = ChangeCodec.encode(orderID: record.orderID, record.changes)
            #expect(again.first == ChangeCodec.version)
            #expect(try ChangeCodec.decode(again).changes == record.changes)
        }
    }

    /// A refund's email text is bounded when read, as it is when a refund is made.
    @Test func overlongEmailTextIsRefused() {
        let limit = RefundOptions.maxEmailTextBytes
        let fits = CodecFixtures.with(CodecFixtures.minimalRefund) { $0.emailText = String(repeating: "é", count: limit / 2) }
        #expect((try? ChangeCodec.decode(ChangeCodec.encode(orderID: "o", [.refundCreated(fits, options: nil)]))) != nil)
        let over = CodecFixtures.with(fits) { $0.emailText = String(repeating: "é", count: limit / 2) + "x" }
        let error = decodingError { () throws(BinaryDecodingError) in
            _ = try ChangeCodec.decode(ChangeCodec.encode(orderID: "o", [.refundCreated(over, options: nil)]))
        }
        #expect(error?.message == "email text of \(limit + 1) bytes exceeds \(limit)")
    }

    /// The recovery log took the slot of the single optional recovery: a refund written before the log existed (a
    /// presence flag, then at most one Recovery) reads as a log of that one action, byte for byte the same, and a
    /// longer log uses a tag older data never has.
    @Test func recoveryLogReadsTheOldOptionalRecovery() throws {
        let recovery = Recovery(action: .contactedBuyer, note: "called", by: "s", at: Timestamp(milliseconds: 7))
        func oldBytes(_ recovery: Recovery?) -> [UInt8] {
            // The layout before the log: ..., transactions, bool presence, [Recovery], job id, request id, resent.
            var w = BinaryWriter(capacity: 64)
            w.string("r"); w.string("o"); w.u8(RefundMethod.none.wireCode)
            w.svarint(0); w.svarint(0); w.svarint(0); w.svarint(0)
            w.string(""); w.optionalString(nil); w.timestamp(Timestamp(milliseconds: -1)); w.string(""); w.bool(false)
            w.length(0); w.length(0)
            if let recovery {
                w.bool(true)
                w.write(recovery)
            } else {
                w.bool(false)
            }
            w.optionalString(nil); w.optionalString(nil); w.length(0)
            return w.take()
        }
        for old in [nil, recovery] {
            var reader = BinaryReader(oldBytes(old))
            let refund = try reader.readRefund(withNotice: false)
            try reader.expectEnd()
            #expect(refund.recoveries == (old.map { [$0] } ?? []) && refund.recoveriesBeforeRetry == 0)
            var again = BinaryWriter(capacity: 64)
            again.write(refund)
            #expect(again.take() == oldBytes(old) + [1, 0])  // the same, then the notice (version 2)
        }
        var longer = CodecFixtures.minimalRefund
        longer.recoveries = [recovery, recovery]
        var w = BinaryWriter(capacity: 64)
        w.write(longer)
        var reader = BinaryReader(w.take())
        #expect(try reader.readRefund(withNotice: true) == longer)
        // Tag 2 holding what tags 0 or 1 would is refused (one encoding per value), as is a mark beyond the log.
        for (count, mark) in [(0, 0), (1, 0), (1, 2)] {
            var bad = BinaryWriter(capacity: 64)
            bad.u8(RecoveryLogTag.log)
            bad.length(count)
            for _ in 0..<count { bad.write(recovery) }
            bad.length(mark)
            var badReader = BinaryReader(bad.take())
            #expect(throws: BinaryDecodingError.self) { try badReader.readRecoveryLog() }
        }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 0xC0DEC)
        var decoded = 0
        for i in 0..<4000 {
            let length = Int.random(in: 0...160, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Half start like a real record, so decoding gets past the header and into the changes.
            if i % 2 == 0, length >= 4 {
                bytes[0] = ChangeCodec.version
                bytes[1] = 1
                bytes[3] = UInt8.random(in: 1...3, using: &rng)
                bytes[4 % length] = UInt8.random(in: 1...12, using: &rng)
            }
            if decodeCanonically(bytes) != nil { decoded += 1 }
        }
        // Some are bound to decode (an empty record); the point is that none crashed.
        #expect(decoded < 4000)
    }

    @Test func mutatedRecordsNeverCrash() {
        var rng = SplitMix64(seed: 42)
        let records = all.map { ChangeCodec.encode(orderID: "o", [$0]) }
        for _ in 0..<6000 {
            var bytes = records[Int.random(in: 0..<records.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                default: if bytes.count > 1 { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng)) }
                }
            }
            _ = decodeCanonically(bytes)
        }
    }

    /// Every single-byte change of a record either throws or decodes to a value whose encoding is those bytes.
    @Test func everySingleByteMutationIsRejectedOrCanonical() {
        let bytes = ChangeCodec.encode(
            orderID: "o",
            [.refundCreated(CodecFixtures.fullRefund, options: CodecFixtures.fullOptions), .disputeOpened(
                reason: "r", at: CodecFixtures.t0, by: "s")])
        for index in bytes.indices {
            var mutated = bytes
            for value in UInt8.min...UInt8.max where value != bytes[index] {
                mutated[index] = value
                _ = decodeCanonically(mutated)
            }
        }
    }

    // MARK: Order state

    @Test func orderStateRoundTripsAfterEveryStepOfARealisticHistory() throws {
        var state = OrderState(placing: CodecFixtures.minimalOrder, at: CodecFixtures.t0, by: "x")
        for (step, change) in CodecFixtures.history.enumerated() {
            state.apply(change)
            let bytes = OrderStateCodec.encode(state)
            let decoded = try OrderStateCodec.decode(bytes)
            #expect(decoded == state, "step \(step)")
            #expect(OrderStateCodec.encode(decoded) == bytes, "step \(step)")
        }
        // The history did what it says: every branch of the state is populated.
        #expect(state.refunds.count == 2)
        #expect(state.refunds[0].recovery?.action == .refundedExternally)
        #expect(state.refunds[0].transactions[0].failures.count == 3)
        #expect(state.refunds[0].resentAt.count == 1)
        #expect(state.disputes.count == 1 && state.disputes[0].outcome == .won)
        #expect(state.requests.first?.status == .approved)
        #expect(state.idempotency["idem-b"]?.refund == 1)
        #expect(state.bookingFeeRefunded)
        #expect(state.lineStatus == [.refunded, .refunded, .refunded])
        #expect(state.timeline.count == CodecFixtures.history.count)
    }

    @Test func replayingDecodedLogRecordsRebuildsTheSameState() throws {
        let expected = CodecFixtures.state(after: CodecFixtures.history)
        // One log record per change, as the engine writes them.
        let log = CodecFixtures.history.map { ChangeCodec.encode(orderID: "ord_7", [$0]) }
        var replayed = OrderState(placing: CodecFixtures.minimalOrder, at: CodecFixtures.t0, by: "x")
        for record in log {
            let decoded = try ChangeCodec.decode(record)
            #expect(decoded.orderID == "ord_7")
            for change in decoded.changes { replayed.apply(change) }
        }
        #expect(replayed == expected)
        // Snapshot halfway, then replay the rest on the restored state.
        let half = CodecFixtures.history.count / 2
        var resumed = try OrderStateCodec.decode(OrderStateCodec.encode(CodecFixtures.state(after: CodecFixtures.history.prefix(half))))
        for record in log[half...] {
            for change in try ChangeCodec.decode(record).changes { resumed.apply(change) }
        }
        #expect(resumed == expected)
    }

    @Test func orderStateEncodingIsDeterministicAndIdempotencyOrderFree() throws {
        let base = CodecFixtures.state(after: CodecFixtures.history.prefix(1))
        let keys = (0..<20).map { "key_\($0)" }
        func build(_ keys: [String], capacity: Int) -> OrderState {
            var idempotency: [String: OrderState.IdempotentRefund] = [:]
            idempotency.reserveCapacity(capacity)
            for (i, key) in keys.enumerated() {
                var options = CodecFixtures.fullOptions
                options.idempotencyKey = nil
                options.reason = key
                idempotency[key] = OrderState.IdempotentRefund(options: options, refund: keys.count - i)
            }
            return OrderState(
                restoring: base.order, lineStatus: base.lineStatus, tenderRefunded: base.tenderRefunded,
                refunds: base.refunds, bookingFeeRefunded: base.bookingFeeRefunded, disputes: base.disputes,
                requests: base.requests, timeline: base.timeline, idempotency: idempotency, placedAt: base.placedAt)
        }
        let a = build(keys, capacity: 0)
        let b = build(keys.reversed().map { $0 }, capacity: 1000)
        #expect(a.idempotency.count == 20)
        let bytesA = OrderStateCodec.encode(a)
        #expect(bytesA == OrderStateCodec.encode(a))
        #expect(try OrderStateCodec.decode(bytesA) == a)
        // Same keys with the same refund numbers → same bytes, whatever the dictionary's iteration order.
        let c = build(keys, capacity: 4096)
        #expect(OrderStateCodec.encode(c) == bytesA)
        #expect(b != a)  // refund numbers differ
    }

    @Test func corruptOrderStatesThrow() {
        let state = CodecFixtures.state(after: CodecFixtures.history)
        let bytes = OrderStateCodec.encode(state)
        for length in 0..<bytes.count {
            #expect(throws: BinaryDecodingError.self) { _ = try OrderStateCodec.decode(bytes[0..<length]) }
        }
        var wrongVersion = bytes
        wrongVersion[0] = 9
        #expect(throws: BinaryDecodingError.self) { _ = try OrderStateCodec.decode(wrongVersion) }
        #expect(throws: BinaryDecodingError.self) { _ = try OrderStateCodec.decode(bytes + [0]) }

        // Per-line and per-tender arrays must match the order.
        let mismatched = OrderState(
            restoring: state.order, lineStatus: [.active], tenderRefunded: state.tenderRefunded, refunds: [],
            bookingFeeRefunded: false, disputes: [], requests: [], timeline: [], idempotency: [:],
            placedAt: state.placedAt)
        let error = decodingError { () throws(BinaryDecodingError) in
            _ = try OrderStateCodec.decode(OrderStateCodec.encode(mismatched))
        }
        #expect(error?.message == "1 line statuses for an order of 3 lines")

        var rng = SplitMix64(seed: 7)
        for _ in 0..<3000 {
            var mutated = bytes
            mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            if let decoded = try? OrderStateCodec.decode(mutated) {
                #expect(OrderStateCodec.encode(decoded) == mutated)
            }
        }
    }

    // MARK: Canonical dump

    @Test func canonicalDumpIgnoresInputOrderAndSeesChanges() throws {
        var states: [OrderState] = []
        for n in 0..<5 {
            var order = CodecFixtures.order
            order.id = "ord_\(n)"
            var changes = CodecFixtures.history
            changes[0] = .placed(order, at: CodecFixtures.t0, by: "checkout")
            states.append(CodecFixtures.state(after: changes.prefix(3 + n * 3)))
        }
        let hash = CanonicalDump.hash(states)
        #expect(CanonicalDump.hash(states.reversed()) == hash)
        #expect(CanonicalDump.bytes(states.shuffled()) == CanonicalDump.bytes(states))
        #expect(CanonicalDump.digests(states.reversed()).map(\.orderID) == states.map(\.order.id))

        // The dump decodes back to the states.
        var reader = BinaryReader(CanonicalDump.bytes(states.reversed()))
        let count = try reader.uvarint()
        var decoded: [OrderState] = []
        for _ in 0..<count { decoded.append(try OrderStateCodec.decode(from: &reader)) }
        try reader.expectEnd()
        #expect(decoded == states)

        var changed = states
        changed[2].apply(.confirmationResent(refund: 1, at: CodecFixtures.t0, by: "s"))
        #expect(CanonicalDump.hash(changed) != hash)
        #expect(CanonicalDump.hash([]) == CanonicalDump.fnv1a64([0]))
        #expect(CanonicalDump.fnv1a64([UInt8]()) == 0xcbf2_9ce4_8422_2325)
        #expect(CanonicalDump.fnv1a64(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
    }
}
