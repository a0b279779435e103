import Foundation
import RefundCore
import RefundStorage
import Testing

@testable import RefundEngine

/// The seed corpora of the libFuzzer targets (`Fuzz/corpus/<target>/`, run by `tools/fuzz.sh`), and the inputs
/// the fuzzers found that once crashed a decoder.
///
/// `seed-*` files are real encodings written by the code below: regenerate them after a format change with
/// `FUZZ_WRITE_CORPUS=1 swift test --filter FuzzCorpusTests`; before a format version changes, rename the seeds
/// in the old version `compat-*<version>` so the old encoding stays covered. `crash-*` files once crashed a decoder
/// (or made it allocate gigabytes) and are kept as regressions; `found-*` files are other inputs worth keeping
/// (odd but legal outcomes). Every run feeds every file of the segment, snapshot and change corpora to its
/// decoder: seeds and compat inputs must decode, crash inputs must be rejected, and nothing may crash this
/// process.
@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    static func withDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-corpus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: url) }
        return try await body(url.path)
    }

    static func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func segmentPaths(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { SegmentFormat.segmentNumber(fileName: $0) != nil }.sorted().map { directory + "/" + $0 }
    }

    /// Appends each batch and waits for it, so that every batch becomes one block.
    static func append(_ log: WriteAheadLog, _ batches: [[[UInt8]]]) async throws {
        for batch in batches { try await log.waitDurable(try log.append(contentsOf: batch).upperBound) }
    }

    static func files(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let directory = corpus.appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map {
            ($0, [UInt8](try Data(contentsOf: directory.appendingPathComponent($0))))
        }
    }

    /// The files a segment-target input stands for, split as `Fuzz/FuzzSegment.swift` splits it: before every
    /// "RFWAL" or "RFMAN" magic after the first byte (at most 5 pieces); segments are numbered in order, the first
    /// manifest piece is `wal.manifest`.
    static func directoryFiles(_ data: [UInt8]) -> [String: [UInt8]] {
        var starts = [0]
        var i = 1
        while i + 5 <= data.count, starts.count < 5 {
            let word = Array(data[i..<(i + 5)])
            if word == SegmentFormat.magic || word == LogManifest.magic { starts.append(i) }
            i += 1
        }
        var result: [String: [UInt8]] = [:]
        var segment: UInt64 = 0
        for (n, start) in starts.enumerated() {
            let piece = Array(data[start..<(n + 1 < starts.count ? starts[n + 1] : data.count)])
            if piece.starts(with: LogManifest.magic) {
                if result[LogManifest.fileName] == nil { result[LogManifest.fileName] = piece }
            } else {
                segment += 1
                result[SegmentFormat.fileName(segment: segment)] = piece
            }
        }
        return result
    }

    // MARK: Model values

    static let t0 = Timestamp(milliseconds: 1_795_341_600_000)

    static let order = Order(
        id: "ord_1", event: "evt_1", eventStartsAt: t0.adding(milliseconds: 86_400_000), customer: "cus_9",
        email: "a@example.com", currency: .gbp, bookingFee: 150,
        lines: [
            OrderLine(
                id: "l1", ticketType: "tt_ga", price: 5000, discount: 500, tax: 750, processingFee: 135,
                platformFee: 99),
            OrderLine(id: "l2", kind: .walletTopUp, price: 2000),
        ],
        tenders: [
            Tender(id: "t1", method: .card, amount: 3000, gatewayRef: "pi_1"),
            Tender(id: "t2", method: .wallet, amount: 3884),
        ])

    static let options = RefundOptions(
        lines: ["l1"], method: .original, fee: .perLine(["l1": 500]), includeProcessingFees: true,
        includePlatformFees: false, includeBookingFee: true, policy: .standard, reason: "event_cancelled", note: "n",
        restock: true, notify: true, emailText: nil, idempotencyKey: "key-1", selfService: false)

    static let refund = Refund(
        id: "rf_1_ord_1", orderID: "ord_1", method: .original, amount: 4135, feeRetained: 500, tax: 669,
        bookingFee: 150, reason: "event_cancelled", note: nil, createdAt: t0.adding(milliseconds: 1000),
        createdBy: "ops_1", restock: true, lines: [RefundLine(line: "l1", amount: 4135, feeRetained: 500, tax: 669)],
        transactions: [
            RefundTransaction(
                tender: "t1", method: .card, amount: 2540, status: .failed, attempts: 2,
                nextAttemptAt: t0.adding(milliseconds: 60_000), gatewayRef: "re_1",
                failures: [FailedAttempt(attempt: 1, at: t0, code: "card_declined", retryable: true)]),
            RefundTransaction(tender: "t2", method: .wallet, amount: 1595, status: .succeeded, attempts: 1),
        ],
        recovery: nil, jobID: "job_1", requestID: nil, resentAt: [t0.adding(milliseconds: 5000)], notify: false,
        emailText: "Show cancelled")

    static let changes: [[OrderChange]] = [
        [.placed(order, at: t0, by: "checkout")],
        [.refundCreated(refund, options: options)],
        [
            .attemptResult(refund: 1, transaction: 0, result: .failed(code: "timeout", retryable: true, retryAt: t0), at: t0),
            .settled(refund: 1, transaction: 0, result: .succeeded(reference: "re_2"), at: t0),
        ],
        [
            .retried(refund: 1, at: t0, by: "staff_1"),
            .recovered(refund: 1, Recovery(action: .refundedExternally, note: "bank", by: "s", at: t0)),
        ],
        [.disputeOpened(reason: "fraudulent", at: t0, by: "gateway"), .disputeClosed(outcome: .won, note: nil, at: t0, by: "s")],
        [
            .requestCreated(
                RefundRequest(
                    id: "rq_1_ord_1", orderID: "ord_1", lines: ["l1"], reason: "cannot attend", requestedBy: "cus_9",
                    createdAt: t0, status: .open)),
            .requestDecided(request: 1, approved: true, note: "ok", refundID: "rf_1_ord_1", at: t0, by: "staff_1"),
            .confirmationResent(refund: 1, at: t0, by: "staff_1"),
        ],
    ]

    /// An order state with a refund, a dispute, a request and an idempotency key in it.
    static var state: OrderState {
        var state = OrderState(placing: order, at: t0, by: "checkout")
        for batch in changes.dropFirst() {
            for change in batch { _ = state.apply(change) }
        }
        return state
    }

    // MARK: Encodings

    /// A partition log record: kind 1, outbox ranges, the ChangeCodec record (see PartitionJournal).
    static func partitionRecord(_ changes: [OrderChange], ranges: [(UInt64, UInt64)]) -> [UInt8] {
        var w = BinaryWriter()
        w.u8(1)
        w.uvarint(UInt64(ranges.count))
        for (first, count) in ranges {
            w.uvarint(first)
            w.uvarint(count)
        }
        ChangeCodec.encode(orderID: "ord_1", changes, into: &w)
        return w.take()
    }

    /// A partition snapshot payload, as the engine writes it: states, a balance, inventory, an outbox record.
    static func partitionImage(_ states: [OrderState]) -> [UInt8] {
        PartitionImageCodec.encode(
            PartitionImage(
                sequence: 12, states: states, balances: [BalanceKey(customer: "cus_9", currency: "GBP"): -1884],
                released: ["tt_ga": 3],
                outbox: states.isEmpty
                    ? [] : [OutboxRecord(sequence: 7, at: t0, slot: 0, refund: 1, kind: .refundCompleted, notify: true)],
                eventsIssued: states.isEmpty ? 0 : 9))
    }

    /// Control log records (see ControlLog): a job started, a job queued, events acknowledged, an engine event.
    static var controlRecords: [[UInt8]] {
        var started = BinaryWriter()
        started.u8(2)
        started.string("job_1")
        started.uvarint(2)
        started.string("evt_1")
        started.string("evt_2")
        started.u8(1)
        started.u8(0)
        RefundOptionsCodec.encode(options, into: &started)
        started.bool(false)
        started.string("ops_1")
        started.uvarint(2)
        started.string("cancel")
        started.string("refund")
        var queued = BinaryWriter()
        queued.u8(3)
        queued.string("job_1")
        queued.uvarint(120)
        queued.uvarint(1)
        queued.string("ord_9")
        queued.string("frozen")
        var acknowledged = BinaryWriter()
        acknowledged.u8(4)
        acknowledged.uvarint(7)
        var event = BinaryWriter()
        event.u8(5)
        event.uvarint(9)
        event.string("bulk.summary")
        event.svarint(t0.milliseconds)
        event.string("job_1")
        event.svarint(12_345)
        event.optionalString("120 orders")
        return [started.take(), queued.take(), acknowledged.take(), event.take()]
    }

    static func segmentSeeds() async throws -> [String: [UInt8]] {
        let records = changes.map { partitionRecord($0, ranges: [(1, 1)]) }
        return try await withDirectory { dir in
            var seeds: [String: [UInt8]] = [:]
            // One block of one record; then a log of raw and LZ4 blocks over two segments.
            let single = dir + "/single"
            let one = try WriteAheadLog(directory: single, fsync: .never)
            try await append(one, [[records[0]]])
            try one.close()
            seeds["seed-single-record"] = try read(try segmentPaths(single)[0])
            let multi = dir + "/multi"
            let log = try WriteAheadLog(directory: multi, fsync: .never, segmentBytes: 350)
            try await append(log, [records, [[]], Array(records.prefix(2)), [Array(repeating: 7, count: 300)]])
            try log.close()
            let paths = try segmentPaths(multi)
            for (i, path) in paths.enumerated() { seeds["seed-segment-\(i + 1)-of-\(paths.count)"] = try read(path) }
            seeds["seed-two-segments"] = try paths.prefix(2).flatMap { try read($0) }
            // The whole directory: its segments, then its manifest.
            seeds["seed-directory"] = try paths.flatMap { try read($0) } + read(multi + "/" + LogManifest.fileName)
            seeds["seed-empty-segment"] = SegmentFormat.encodeHeader(.init(segmentNumber: 1, firstSequence: 1))
            return seeds
        }
    }

    static func snapshotSeeds() throws -> [String: [UInt8]] {
        let compressible = partitionImage(Array(repeating: state, count: 3))
        return [
            "seed-empty": try SnapshotStore.encode(Snapshot(sequence: 0, payload: [])),
            "seed-raw": try SnapshotStore.encode(Snapshot(sequence: 5, payload: partitionImage([]))),
            "seed-lz4": try SnapshotStore.encode(Snapshot(sequence: 12, payload: compressible)),
        ]
    }

    static func commitBatch(_ entries: [CommitBatchCodec.Entry]) -> [UInt8] {
        var writer = BinaryWriter()
        writer.u8(PartitionJournal.commitBatchKind)
        CommitBatchCodec.encode(entries, into: &writer)
        return writer.take()
    }

    /// Three bulk refunds (one card, one card and wallet, one with a total that is not its lines' sum) and two
    /// gateway answers, as a bulk chunk and its answers log them.
    static var bulkCommits: [CommitBatchCodec.Entry] {
        func refund(_ order: String, _ lines: [RefundLine], _ transactions: [RefundTransaction], amount: Int64? = nil) -> Refund {
            Refund(
                id: RefundID.make(order: order, number: 1), orderID: order, method: .original,
                amount: amount ?? lines.reduce(0) { $0 + $1.amount }, feeRetained: lines.reduce(0) { $0 + $1.feeRetained },
                tax: lines.reduce(0) { $0 + $1.tax }, bookingFee: 0, reason: "event_cancelled", note: nil, createdAt: t0,
                createdBy: "ops", restock: true, lines: lines, transactions: transactions, jobID: "job_1",
                emailText: "Sorry, the show is off.")
        }
        let card = RefundTransaction(tender: "t1", method: .card, amount: 4_900, status: .pending, attempts: 0, nextAttemptAt: t0)
        let wallet = RefundTransaction(tender: "t2", method: .wallet, amount: 100, status: .succeeded, attempts: 1, settledAt: t0)
        let line = RefundLine(line: "l1", amount: 5_000, feeRetained: 100, tax: 800)
        var cardOnly = card
        cardOnly.amount = 5_000
        return [
            .init(outbox: [.init(first: 1, count: 1)], orderID: "ord_1", changes: [.refundCreated(refund("ord_1", [line], [cardOnly]), options: nil)]),
            .init(outbox: [.init(first: 2, count: 1)], orderID: "ord_2", changes: [.refundCreated(refund("ord_2", [line], [card, wallet]), options: nil)]),
            .init(outbox: [.init(first: 3, count: 1)], orderID: "ord_3", changes: [.refundCreated(refund("ord_3", [line], [cardOnly], amount: 5_001), options: nil)]),
            .init(outbox: [.init(first: 4, count: 1)], orderID: "ord_1", changes: [.attemptResult(refund: 1, transaction: 0, result: .succeeded(reference: nil), at: t0)]),
            .init(outbox: [], orderID: "ord_2", changes: [.attemptResult(refund: 1, transaction: 0, result: .failed(code: "card_declined", retryable: true, retryAt: t0), at: t0)]),
        ]
    }

    static func changeSeeds() -> [String: [UInt8]] {
        var seeds: [String: [UInt8]] = [:]
        for (i, batch) in changes.enumerated() {
            seeds["seed-0-changes-\(i)"] = [0] + ChangeCodec.encode(orderID: "ord_1", batch)
            seeds["seed-1-partition-record-\(i)"] = [1] + partitionRecord(batch, ranges: i == 0 ? [] : [(3, 2)])
        }
        // Commit batches (partition log records of kind 2): a bulk chunk with compact refunds and answers, and
        // one with every change written whole.
        seeds["seed-1-commit-batch-bulk"] = [1] + commitBatch(bulkCommits)
        seeds["seed-1-commit-batch-whole"] = [1] + commitBatch(changes.enumerated().map { i, batch in
            CommitBatchCodec.Entry(outbox: [.init(first: UInt64(10 + i), count: 1)], orderID: "ord_\(i)", changes: batch)
        })
        seeds["seed-2-image-empty"] = [2] + partitionImage([])
        seeds["seed-2-image"] = [2] + partitionImage([state])
        seeds["seed-3-order-state-placed"] = [3] + OrderStateCodec.encode(OrderState(placing: order, at: t0, by: "x"))
        seeds["seed-3-order-state"] = [3] + OrderStateCodec.encode(state)
        for (i, record) in controlRecords.enumerated() { seeds["seed-4-control-\(i)"] = [4] + record }
        return seeds
    }

    // MARK: Tests

    @Test("the seeds are written when FUZZ_WRITE_CORPUS is set")
    func writeSeeds() async throws {
        guard ProcessInfo.processInfo.environment["FUZZ_WRITE_CORPUS"] != nil else { return }
        let all = [
            "segment": try await Self.segmentSeeds(), "snapshot": try Self.snapshotSeeds(), "change": Self.changeSeeds(),
        ]
        for (target, seeds) in all {
            let directory = Self.corpus.appendingPathComponent(target)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasPrefix("seed-") {
                try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
            }
            for (name, bytes) in seeds { try Data(bytes).write(to: directory.appendingPathComponent(name)) }
        }
    }

    @Test("every segment in the corpus reads back or is corruption")
    func segmentCorpus() async throws {
        for (name, bytes) in try Self.files("segment") {
            try await Self.withDirectory { dir in
                for (file, content) in Self.directoryFiles(bytes) {
                    try Data(content).write(to: URL(fileURLWithPath: dir + "/" + file))
                }
                do {
                    let records = try LogReader(directory: dir).readAll()
                    #expect(!name.hasPrefix("crash-"), "\(name) read back \(records.count) records")
                    _ = try LogReader(directory: dir).recover()
                } catch let error as StorageError {
                    #expect(error.code == .corruption, "\(name): \(error)")
                    #expect(!name.hasPrefix("seed-") && !name.hasPrefix("compat-"), "\(name): \(error)")
                }
            }
        }
    }

    @Test("every snapshot in the corpus decodes or is corruption")
    func snapshotCorpus() throws {
        for (name, bytes) in try Self.files("snapshot") {
            do {
                _ = try SnapshotStore.decode(bytes, path: name)
                #expect(!name.hasPrefix("crash-"), "\(name) decoded")
            } catch {
                #expect(error.code == .corruption, "\(name): \(error)")
                #expect(!name.hasPrefix("seed-") && !name.hasPrefix("compat-"), "\(name): \(error)")
            }
        }
    }

    @Test("every change codec input in the corpus decodes or is rejected")
    func changeCorpus() throws {
        for (name, bytes) in try Self.files("change") where !bytes.isEmpty {
            let body = Array(bytes.dropFirst())
            do throws(BinaryDecodingError) {
                // As Fuzz/FuzzChange.swift: the first byte picks the decoder. The current version of a codec
                // re-encodes to the same bytes; an older one (compat-*) only has to decode (a compat image can
                // carry the current image version around order states of an older one).
                let current = !name.hasPrefix("compat-")
                switch bytes[0] % 5 {
                case 0:
                    let record = try ChangeCodec.decode(body)
                    if current, body.first == ChangeCodec.version {
                        #expect(ChangeCodec.encode(orderID: record.orderID, record.changes) == body, "\(name)")
                    }
                case 1: _ = try DurableRecordDecoding.decodePartitionLogRecord(body)
                case 2:
                    let image = try PartitionImageCodec.decode(body, sequence: 12)
                    if current, body.first == PartitionImageCodec.version { #expect(PartitionImageCodec.encode(image) == body, "\(name)") }
                case 3:
                    let state = try OrderStateCodec.decode(body)
                    if current, body.first == OrderStateCodec.version { #expect(OrderStateCodec.encode(state) == body, "\(name)") }
                default: try DurableRecordDecoding.validateControlRecord(body)
                }
                #expect(!name.hasPrefix("crash-"), "\(name) decoded")
            } catch {
                #expect(!name.hasPrefix("seed-") && !name.hasPrefix("compat-"), "\(name): \(error)")
            }
        }
    }
}
