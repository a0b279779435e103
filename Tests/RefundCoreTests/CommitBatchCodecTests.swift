import Testing

@testable import RefundCore

/// The commit batch (many commits in one log record, bulk refunds compact): whatever goes in comes out, compact
/// or whole, and damaged bytes throw.
@Suite struct CommitBatchCodecTests {
    static let t0 = Timestamp(milliseconds: 1_795_341_600_000)

    /// A refund as a bulk chunk makes it: shared fields, derived id, totals that are the lines' sums.
    static func bulkRefund(
        order: String, number: Int = 1, run: UInt64? = nil, lines: [RefundLine], bookingFee: Int64 = 0,
        transactions: [RefundTransaction], at: Timestamp = t0, jobID: String? = "job_7"
    ) -> Refund {
        Refund(
            id: RefundID.make(order: order, number: number, run: run), orderID: order, method: .original,
            // Wrapping: the random chunks use extreme amounts, whose totals the codec must then write, not derive.
            amount: lines.reduce(bookingFee) { $0 &+ $1.amount }, feeRetained: lines.reduce(0) { $0 &+ $1.feeRetained },
            tax: lines.reduce(0) { $0 &+ $1.tax }, bookingFee: bookingFee, reason: "event_cancelled", note: nil,
            createdAt: at, createdBy: "ops", restock: true, lines: lines, transactions: transactions, jobID: jobID,
            notify: true, emailText: "Sorry, the show is off.")
    }

    static func pending(_ tender: String, _ amount: Int64, at: Timestamp = t0) -> RefundTransaction {
        RefundTransaction(tender: tender, method: .card, amount: amount, status: .pending, attempts: 0, nextAttemptAt: at)
    }

    static func settled(_ tender: String, _ amount: Int64, at: Timestamp = t0) -> RefundTransaction {
        RefundTransaction(tender: tender, method: .wallet, amount: amount, status: .succeeded, attempts: 1, settledAt: at)
    }

    static func encode(_ entries: [CommitBatchCodec.Entry]) -> [UInt8] {
        var writer = BinaryWriter()
        CommitBatchCodec.encode(entries, into: &writer)
        return writer.take()
    }

    static func decode(_ bytes: [UInt8]) throws(BinaryDecodingError) -> [CommitBatchCodec.Entry] {
        var reader = BinaryReader(bytes)
        let entries = try CommitBatchCodec.decode(from: &reader)
        try reader.expectEnd()
        return entries
    }

    static func entry(_ order: String, _ changes: [OrderChange], outbox: [(UInt64, Int)] = []) -> CommitBatchCodec.Entry {
        CommitBatchCodec.Entry(
            outbox: outbox.map { CommitBatchCodec.OutboxRange(first: $0.0, count: $0.1) }, orderID: order, changes: changes)
    }

    /// A seeded random bulk chunk: refunds of 1–6 lines and 1–3 transactions (both shapes), amounts up to the
    /// extremes (then a total is written, not derived), answers of every result, ids sharing prefixes.
    static func randomChunk(seed: UInt64, count: Int) -> [CommitBatchCodec.Entry] {
        var random = SplitMix64(seed: seed)
        var entries: [CommitBatchCodec.Entry] = []
        var sequence: UInt64 = 1 + random.next() % 1_000_000
        let run: UInt64? = random.next() % 2 == 0 ? nil : random.next() % 1000
        for i in 0..<count {
            let order = ["ord_\(i)", "ordé_\(i)", "ordè_\(i * 7)", "x\(i)"][Int(random.next() % 4)]
            let huge = random.next() % 10 == 0
            func amount() -> Int64 { huge ? Int64.max / 3 + Int64(random.next() % 5) : Int64(random.next() % 100_000) }
            let lines = (0..<(1 + Int(random.next() % 6))).map { k in
                RefundLine(line: "l\(k + 1)", amount: amount(), feeRetained: Int64(random.next() % 300), tax: amount() / 7)
            }
            let at = t0.adding(milliseconds: Int64(random.next() % 5))
            var transactions: [RefundTransaction] = []
            for k in 0..<(1 + Int(random.next() % 3)) {
                transactions.append(
                    random.next() % 2 == 0 ? pending("t\(k + 1)", amount(), at: at) : settled("t\(k + 1)", amount(), at: at))
            }
            let outbox: [(UInt64, Int)] = (0..<Int(random.next() % 3)).map { _ in
                // Mostly increasing, sometimes behind the previous range (two partitions interleave numbers).
                if random.next() % 5 == 0 { sequence -= min(sequence - 1, 3) } else { sequence += random.next() % 4 }
                let range = (sequence, 1 + Int(random.next() % 3))
                sequence += UInt64(range.1)
                return range
            }
            switch random.next() % 4 {
            case 0:
                let result = [
                    AttemptResult.succeeded(reference: nil), .succeeded(reference: "re_\(i)"), .accepted(reference: nil),
                    .failed(code: "card_declined", retryable: true, retryAt: at.adding(milliseconds: 60_000)),
                    .unknown(reason: "timeout", retryAt: at.adding(milliseconds: 1_000)),
                ][Int(random.next() % 5)]
                entries.append(entry(order, [.attemptResult(refund: 1, transaction: 0, result: result, at: at)], outbox: outbox))
            default:
                var refund = bulkRefund(
                    order: order, number: 1 + Int(random.next() % 3), run: run, lines: lines,
                    bookingFee: Int64(random.next() % 3) * 100, transactions: transactions, at: at)
                if random.next() % 8 == 0 { refund.amount &+= 1 }  // totals that are not the lines' sums
                if random.next() % 8 == 0 { refund.tax &-= 1 }
                entries.append(entry(order, [.refundCreated(refund, options: nil)], outbox: outbox))
            }
        }
        return entries
    }

    @Test func randomBulkChunksRoundTrip() throws {
        for seed in UInt64(1)...200 {
            let entries = Self.randomChunk(seed: seed, count: 1 + Int(seed % 40))
            let decoded = try Self.decode(Self.encode(entries))
            #expect(decoded == entries, "seed \(seed) (reproduce with randomChunk(seed: \(seed), …))")
        }
    }

    @Test func bulkRefundsAreWrittenCompactly() throws {
        let entries = (1...100).map { i in
            Self.entry(
                "ord_\(i)",
                [
                    .refundCreated(
                        Self.bulkRefund(
                            order: "ord_\(i)",
                            lines: [RefundLine(line: "l1", amount: 4_900, feeRetained: 100, tax: 800)],
                            transactions: [Self.pending("t1", 4_900)]), options: nil)
                ], outbox: [(UInt64(2 * i), 2)])
        }
        let batch = Self.encode(entries)
        let single = entries.reduce(0) { $0 + ChangeCodec.encode(orderID: $1.orderID, $1.changes).count }
        #expect(try Self.decode(batch) == entries)
        // Shared fields once, ids derived: under a quarter of the records one by one.
        #expect(batch.count * 4 < single, "batch \(batch.count) bytes against \(single) one by one")
        #expect(batch.count < 100 * 32, "\(batch.count) bytes for 100 one-line refunds (before LZ4)")
    }

    @Test func refundsThatDoNotFitAreWrittenWhole() throws {
        let line = [RefundLine(line: "l1", amount: 100, feeRetained: 0, tax: 0)]
        let plain = Self.bulkRefund(order: "o1", lines: line, transactions: [Self.pending("t1", 100)])
        var otherReason = Self.bulkRefund(order: "o2", lines: line, transactions: [Self.pending("t1", 100)])
        otherReason.reason = "customer_request"
        var requested = Self.bulkRefund(order: "o3", lines: line, transactions: [Self.pending("t1", 100)])
        requested.requestID = "rq_1_o3"
        var foreignID = Self.bulkRefund(order: "o4", lines: line, transactions: [Self.pending("t1", 100)])
        foreignID.id = "refund-4"
        var answered = Self.bulkRefund(order: "o5", lines: line, transactions: [Self.pending("t1", 100)])
        answered.transactions[0].gatewayRef = "re_9"
        let withOptions = Self.bulkRefund(order: "o6", lines: line, transactions: [Self.pending("t1", 100)])
        let entries = [
            Self.entry("o1", [.refundCreated(plain, options: nil)]),
            Self.entry("o2", [.refundCreated(otherReason, options: nil)]),
            Self.entry("o3", [.refundCreated(requested, options: nil)]),
            Self.entry("o4", [.refundCreated(foreignID, options: nil)]),
            Self.entry("o5", [.refundCreated(answered, options: nil)]),
            Self.entry("o6", [.refundCreated(withOptions, options: RefundOptions(method: .original, reason: "x", idempotencyKey: "k"))]),
            // A refund filed under another order's entry, and two changes in one commit.
            Self.entry("o7", [.refundCreated(plain, options: nil)]),
            Self.entry("o1", [.refundCreated(plain, options: nil), .retried(refund: 1, at: Self.t0, by: "ops")]),
        ]
        #expect(try Self.decode(Self.encode(entries)) == entries)
    }

    /// Found by the daemon's first bulk of answers (the debug check in `PartitionJournal.append(batch:)`): an
    /// order id sharing more bytes with the previous one than the record has left was taken for a truncation.
    @Test func aLongSharedOrderIDAtTheEndOfTheRecord() throws {
        let id = "order_0123456789abcdef_"
        let entries = (1...3).map { i in
            Self.entry(
                id + "\(i)", [.attemptResult(refund: 1, transaction: 0, result: .succeeded(reference: nil), at: Self.t0)])
        }
        #expect(try Self.decode(Self.encode(entries)) == entries)
    }

    /// Swift's `==` takes canonically equivalent strings as equal: a refund whose reason is "café" spelt with a
    /// combining accent must not come back with the precomposed bytes of the batch's shared reason.
    @Test func sharedFieldsAreComparedByteForByte() throws {
        let line = [RefundLine(line: "l1", amount: 100, feeRetained: 0, tax: 0)]
        var first = Self.bulkRefund(order: "o1", lines: line, transactions: [Self.pending("t1", 100)])
        first.reason = "caf\u{E9}"
        var second = Self.bulkRefund(order: "o2", lines: line, transactions: [Self.pending("t1", 100)])
        second.reason = "cafe\u{301}"
        #expect(first.reason == second.reason)  // what made the mistake possible
        let entries = [Self.entry("o1", [.refundCreated(first, options: nil)]), Self.entry("o2", [.refundCreated(second, options: nil)])]
        let decoded = try Self.decode(Self.encode(entries))
        let reasons = decoded.compactMap { entry -> [UInt8]? in
            guard case .refundCreated(let refund, _) = entry.changes.first else { return nil }
            return Array(refund.reason.utf8)
        }
        #expect(reasons == [Array(first.reason.utf8), Array(second.reason.utf8)])
    }

    /// A batch's whole commits are the current ChangeCodec: the two versions move together.
    @Test func theBatchVersionNamesTheCurrentChangeVersion() {
        #expect(CommitBatchCodec.changeVersion(ofBatch: CommitBatchCodec.version) == ChangeCodec.version)
        #expect(CommitBatchCodec.changeVersion(ofBatch: 1) == 2)
        #expect(CommitBatchCodec.changeVersion(ofBatch: CommitBatchCodec.version + 1) == nil)
    }

    @Test func everyKindOfChangeRoundTripsInABatch() throws {
        let all = CodecFixtures.allChanges
        let entries = all.enumerated().map { i, change in Self.entry("ord_\(i)", [change], outbox: [(UInt64(i + 1), 1)]) }
        #expect(try Self.decode(Self.encode(entries)) == entries)
        #expect(try Self.decode(Self.encode([Self.entry("o", all)])) == [Self.entry("o", all)])
    }

    @Test func everyTruncationAndTrailingByteThrows() {
        let bytes = Self.encode(Self.randomChunk(seed: 7, count: 12))
        for length in 0..<bytes.count {
            #expect(throws: BinaryDecodingError.self, "prefix \(length)") { _ = try Self.decode(Array(bytes[0..<length])) }
        }
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode(bytes + [0]) }
    }

    @Test func damagedFieldsThrow() throws {
        let refund = Self.bulkRefund(
            order: "o1", lines: [RefundLine(line: "l1", amount: 100, feeRetained: 0, tax: 0)],
            transactions: [Self.pending("t1", 100)])
        let bytes = Self.encode([Self.entry("o1", [.refundCreated(refund, options: nil)], outbox: [(5, 1)])])
        // version, then the shared-fields flag, then (near the end) the entry tag, flags and shape.
        var badVersion = bytes
        badVersion[0] = 9
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode(badVersion) }
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode([CommitBatchCodec.version, 0, 0, 0]) }  // no commit
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode([CommitBatchCodec.version, 0, 2, 1]) }  // shared flag 2
        // A compact refund without shared fields, an unknown entry tag.
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode([CommitBatchCodec.version, 0, 0, 1, 1, 0, 0, 1, 0x6F]) }
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode([CommitBatchCodec.version, 0, 0, 1, 3, 0, 0, 1, 0x6F]) }
        // An order id that claims more shared bytes than the previous id has.
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode([CommitBatchCodec.version, 0, 0, 1, 0, 0, 4, 0, 0]) }
        // Prefix sharing that cuts a character in two is fine; bytes that are not UTF-8 are not.
        let split = [Self.entry("aé", []), Self.entry("aè", [])]
        #expect(try Self.decode(Self.encode(split)) == split)
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode([CommitBatchCodec.version, 0, 0, 1, 0, 0, 0, 1, 0xC3, 0]) }
        // An outbox range that would start below sequence 0.
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode([CommitBatchCodec.version, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0x6F, 0]) }
    }

    @Test func derivedTotalsThatOverflowThrow() throws {
        // Two lines whose amounts overflow when summed: the encoder writes the amount; a record claiming it is
        // derived (flags 0) must throw rather than wrap.
        let lines = [
            RefundLine(line: "l1", amount: Int64.max, feeRetained: 0, tax: 0),
            RefundLine(line: "l2", amount: Int64.max, feeRetained: 0, tax: 0),
        ]
        var refund = Self.bulkRefund(order: "o", lines: [], transactions: [Self.pending("t1", 5)])
        refund.lines = lines
        refund.amount = 5
        let bytes = Self.encode([Self.entry("o", [.refundCreated(refund, options: nil)])])
        #expect(try Self.decode(bytes) == [Self.entry("o", [.refundCreated(refund, options: nil)])])
        // The totals flags byte follows the entry's order id, the refund number and the time offset.
        // The order id "o" is the last 0x6F (after it only numbers and the ids l1, l2, t1).
        let header = (bytes.lastIndex(of: 0x6F) ?? 0) + 1
        #expect(bytes[header] == 2 && bytes[header + 1] == 0, "number 1 (svarint 2), offset 0")
        let flags = header + 2
        #expect(bytes[flags] & 1 == 1, "the amount is written, not derived")
        var damaged = bytes
        damaged[flags] &= ~1
        damaged.remove(at: flags + 1)  // the written amount (5: one byte)
        #expect(throws: BinaryDecodingError.self) { _ = try Self.decode(damaged) }
    }
}
