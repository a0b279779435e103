import Foundation
import RefundStorage
import Testing

@testable import RefundCore
@testable import RefundEngine

/// Issue 7 item 9: an event is a fact. A `refund.failed` event read later, or after a restart, carries the failure
/// it announced, not the transaction's latest one; every event of a refund carries the refund's notify and email
/// text as they were when it was made, and reads the same, byte for byte, after a restart.
@Suite struct EventFactTests {
    static func open(_ fs: SimulatedFileSystem, _ gateway: ScriptedGateway, _ clock: ManualClock) async throws -> Engine {
        try await Engine.open(
            configuration: EngineConfiguration(partitions: 2),
            durability: DurabilityOptions(directory: "/data", snapshotEveryRecords: 0, snapshotEveryBytes: 0, fileSystem: fs),
            gateway: gateway, clock: clock)
    }

    /// The events as the server writes them: one JSON object each, keys sorted.
    static func json(_ events: [OutboxEvent]) throws -> [String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try events.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
    }

    static func refundEvents(_ events: [OutboxEvent], _ refundID: String) -> [OutboxEvent] {
        events.filter { $0.refundID == refundID }
    }

    @Test func aFailedEventKeepsTheCodeItAnnounced() async throws {
        let fs = SimulatedFileSystem(seed: 9)
        let gateway = ScriptedGateway()
        let clock = ManualClock(Fixtures.t0)
        func open() async throws -> Engine {
            try await Engine.open(
                configuration: EngineConfiguration(partitions: 1),
                durability: DurabilityOptions(directory: "/data", snapshotEveryRecords: 0, snapshotEveryBytes: 0, fileSystem: fs),
                gateway: gateway, clock: clock)
        }
        let engine = try await open()
        try await engine.putOrder(Fixtures.tickets(id: "ord_f", count: 1))
        gateway.then([.failed(code: "expired_card", retryable: false)])
        let refund = try await engine.createRefund(orderID: "ord_f", Fixtures.options(), caller: Fixtures.staff)
        #expect(refund.status == .failed)
        gateway.then([.failed(code: "try_later", retryable: false)])
        _ = try await engine.retry(refundID: refund.id, caller: Fixtures.staff)
        func failedTexts(_ engine: Engine) async -> [String?] {
            await engine.events(after: 0).filter { $0.kind == .refundFailed }.map(\.text)
        }
        #expect(await failedTexts(engine) == ["expired_card", "try_later"])
        try await engine.close()  // the snapshot holds the outbox
        let reopened = try await open()
        #expect(await failedTexts(reopened) == ["expired_card", "try_later"])
        try await reopened.close()
    }

    /// A single `refund.create` with `email_text`: every event of the refund carries the text and the notify it
    /// was made with (accepted, completed, failed; paid at once or settled later), `notify: false` included, and
    /// the events are the same bytes when read again, after a crash (log replay) and after a clean stop (snapshot).
    @Test func aSingleRefundsEventsCarryItsNoticeThroughRestarts() async throws {
        let fs = SimulatedFileSystem(seed: 91)
        let gateway = ScriptedGateway()
        let clock = ManualClock(Fixtures.t0)
        let engine = try await Self.open(fs, gateway, clock)
        for id in ["ord_told", "ord_quiet", "ord_failed", "ord_later"] {
            try await engine.putOrder(Fixtures.tickets(id: id, count: 1))
        }
        func options(_ text: String?, notify: Bool = true) -> RefundOptions {
            RefundOptions(method: .original, reason: "customer_request", notify: notify, emailText: text)
        }
        let told = try await engine.createRefund(orderID: "ord_told", options("Sorry about the show"), caller: Fixtures.staff)
        let quiet = try await engine.createRefund(
            orderID: "ord_quiet", options("Not sent", notify: false), caller: Fixtures.staff)
        gateway.then([.failed(code: "expired_card", retryable: false)])
        let failed = try await engine.createRefund(orderID: "ord_failed", options("We will try again"), caller: Fixtures.staff)
        gateway.then([.pending(reference: "re_later")])
        let later = try await engine.createRefund(orderID: "ord_later", options(nil, notify: false), caller: Fixtures.staff)
        #expect(told.emailText == "Sorry about the show" && told.notify && !quiet.notify)
        clock.advance(milliseconds: 60_000)
        _ = try await engine.settle(refundID: later.id, tender: "t1", succeeded: true, reference: "re_later")

        let events = await engine.events(after: 0)
        let toldEvents = Self.refundEvents(events, told.id)
        #expect(toldEvents.map(\.kind) == [.refundAccepted, .refundCompleted])
        for event in toldEvents {
            #expect(event.notify == true && event.notifyEmail == "b@example.com", "\(event.kind)")
            #expect(event.emailText == "Sorry about the show", "\(event.kind)")
        }
        let quietEvents = Self.refundEvents(events, quiet.id)
        #expect(quietEvents.map(\.kind) == [.refundAccepted, .refundCompleted])
        for event in quietEvents {
            #expect(event.notify == false && event.notifyEmail == nil && event.emailText == "Not sent", "\(event.kind)")
        }
        let failedEvents = Self.refundEvents(events, failed.id)
        #expect(failedEvents.map(\.kind) == [.refundAccepted, .refundFailed])
        #expect(failedEvents.last?.text == "expired_card")
        for event in failedEvents {
            #expect(event.notify == true && event.notifyEmail == "b@example.com", "\(event.kind)")
            #expect(event.emailText == "We will try again", "\(event.kind)")
        }
        let laterEvents = Self.refundEvents(events, later.id)
        #expect(laterEvents.map(\.kind) == [.refundAccepted, .refundCompleted])
        #expect(laterEvents.allSatisfy { $0.notify == false && $0.notifyEmail == nil && $0.emailText == nil })

        // On the wire: notify and notify_email on every refund event, email_text when there is one.
        let completed = try Self.json(toldEvents)[1]
        #expect(completed.contains(#""email_text":"Sorry about the show""#))
        #expect(completed.contains(#""notify":true"#) && completed.contains(#""notify_email":"b@example.com""#))
        let quietCompleted = try Self.json(quietEvents)[1]
        #expect(quietCompleted.contains(#""notify":false"#) && !quietCompleted.contains("notify_email"))
        #expect(try !Self.json(laterEvents).contains { $0.contains("email_text") })

        // The same bytes whenever and however they are read.
        let bytes = try Self.json(events)
        #expect(try Self.json(await engine.events(after: 0)) == bytes)
        engine.kill()
        fs.restart(powerLoss: false)
        let replayed = try await Self.open(fs, gateway, clock)
        #expect(await replayed.events(after: 0) == events)
        #expect(try Self.json(await replayed.events(after: 0)) == bytes)
        try await replayed.close()  // the snapshot holds the refunds and the outbox
        let restored = try await Self.open(fs, gateway, clock)
        #expect(await restored.events(after: 0) == events)
        #expect(try Self.json(await restored.events(after: 0)) == bytes)
        #expect(try await restored.refund(told.id).emailText == "Sorry about the show")
        // A refund completed after the restart still says what the refund was made with.
        gateway.then([.pending(reference: "re_after")])
        try await restored.putOrder(Fixtures.tickets(id: "ord_after", count: 1))
        let after = try await restored.createRefund(orderID: "ord_after", options("After", notify: false), caller: Fixtures.staff)
        try await restored.close()
        let third = try await Self.open(fs, gateway, clock)
        _ = try await third.settle(refundID: after.id, tender: "t1", succeeded: true)
        let afterEvents = Self.refundEvents(await third.events(after: 0), after.id)
        #expect(afterEvents.map(\.kind) == [.refundAccepted, .refundCompleted])
        #expect(afterEvents.allSatisfy { $0.notify == false && $0.notifyEmail == nil && $0.emailText == "After" })
        try await third.close()
    }

    /// A bulk cancellation's refunds keep the job's text and notify on every event, as a single refund does.
    @Test func bulkRefundsCarryTheJobsNoticeOnEveryEvent() async throws {
        let fs = SimulatedFileSystem(seed: 92)
        let gateway = ScriptedGateway()
        let clock = ManualClock(Fixtures.t0)
        let engine = try await Self.open(fs, gateway, clock)
        for i in 0..<3 { try await engine.putOrder(Fixtures.tickets(id: "ord_b\(i)", event: "evt_b", count: 1)) }
        let request = BulkCancelRequest(
            events: ["evt_b"],
            options: RefundOptions(method: .original, reason: "event_cancelled", notify: false, emailText: "Show cancelled"))
        let status = try await engine.runBulkCancellation(request, caller: Fixtures.staff)
        #expect(status.succeeded == 3)
        let events = await engine.events(after: 0).filter { $0.refundID != nil }
        #expect(events.count == 6)
        #expect(events.allSatisfy { $0.emailText == "Show cancelled" && $0.notify == false && $0.notifyEmail == nil })
        #expect(try await engine.refund("rf_1_ord_b0").emailText == "Show cancelled")
        let bytes = try Self.json(events)
        try await engine.close()
        let reopened = try await Self.open(fs, gateway, clock)
        #expect(try Self.json(await reopened.events(after: 0).filter { $0.refundID != nil }) == bytes)
        try await reopened.close()
    }

    /// `email_text` is bounded like `note`: a longer one is refused before anything changes.
    @Test func anOverlongEmailTextIsRefused() async throws {
        let engine = Fixtures.engine(partitions: 1)
        try await engine.putOrder(Fixtures.tickets(id: "ord_long", count: 1))
        let options = RefundOptions(
            method: .original, reason: "customer_request",
            emailText: String(repeating: "x", count: RefundOptions.maxEmailTextBytes + 1))
        let error = await #expect(throws: RefundError.self) {
            try await engine.createRefund(orderID: "ord_long", options, caller: Fixtures.staff)
        }
        #expect(error?.code == .invalidField)
        #expect(await engine.events(after: 0).isEmpty)
    }

    // MARK: Data from before refunds kept their notice

    /// `bytes` (an order state whose refunds have no email text, with no holders) as version 2 wrote it: version
    /// 3's bytes less each refund's notice.
    static func version2(_ state: OrderState) throws -> [UInt8] {
        var bytes = OrderStateCodec.encodeVersion3(state)
        #expect(bytes[0] == 3)
        bytes[0] = 2
        for refund in state.refunds {
            #expect(refund.emailText == nil)
            var writer = BinaryWriter(capacity: 256)
            writer.write(refund)
            let encoded = writer.take()
            let range = try #require(bytes.firstRange(of: encoded))
            bytes.removeSubrange((range.upperBound - 2)..<range.upperBound)
        }
        return bytes
    }

    /// A state with two refunds: the first made with notify off (and an idempotency key when `keyed`), the
    /// second with notify on.
    static func stateWithTwoRefunds(keyed: Bool) async throws -> OrderState {
        let engine = Fixtures.engine(partitions: 1)
        try await engine.putOrder(Fixtures.tickets(id: "ord_old", count: 2))
        _ = try await engine.createRefund(
            orderID: "ord_old",
            RefundOptions(lines: ["l1"], method: .original, reason: "customer_request", notify: false, idempotencyKey: keyed ? "k1" : nil),
            caller: Fixtures.staff)
        _ = try await engine.createRefund(
            orderID: "ord_old", RefundOptions(lines: ["l2"], method: .original, reason: "customer_request"),
            caller: Fixtures.staff)
        return try await engine.orderState("ord_old")
    }

    /// An order state of version 2 reads: a refund with an idempotency key takes notify from the options kept for
    /// the key, any other reads as notify on; none has text.
    @Test func version2OrderStatesReadTheNotifyTheyKept() async throws {
        let keyed = try await Self.stateWithTwoRefunds(keyed: true)
        #expect(keyed.refunds.map(\.notify) == [false, true])
        var reader = BinaryReader(try Self.version2(keyed))
        let (decoded, version) = try OrderStateCodec.decodeWithVersion(from: &reader)
        try reader.expectEnd()
        #expect(version == 2)
        #expect(decoded == keyed)
        let plain = try await Self.stateWithTwoRefunds(keyed: false)
        #expect(try OrderStateCodec.decode(try Self.version2(plain)).refunds.map(\.notify) == [true, true])
    }

    /// A snapshot written before refunds kept their notify: a refund whose `refund.accepted` record is still in
    /// the outbox takes the notify that record has.
    @Test func version3ImagesTakeNotifyFromTheOutbox() async throws {
        let state = try await Self.stateWithTwoRefunds(keyed: false)
        let image = PartitionImage(
            sequence: 4, states: [state], balances: [:], released: [:],
            outbox: [
                OutboxRecord(sequence: 1, at: Fixtures.t0, slot: 0, refund: 1, kind: .refundAccepted, notify: false),
                OutboxRecord(sequence: 2, at: Fixtures.t0, slot: 0, refund: 1, kind: .refundCompleted, notify: false),
            ],
            eventsIssued: 4)
        var bytes = PartitionImageCodec.encode(image)
        #expect(bytes[0] == 4)
        let current = OrderStateCodec.encode(state)
        let range = try #require(bytes.firstRange(of: current))
        bytes.replaceSubrange(range, with: try Self.version2(state))
        bytes[0] = 3
        let decoded = try PartitionImageCodec.decode(bytes, sequence: 4)
        #expect(decoded.states[0].refunds.map(\.notify) == [false, true])
        #expect(decoded.states[0] == state)
        // The current version keeps it on the refund: nothing to take from the outbox.
        let again = try PartitionImageCodec.decode(PartitionImageCodec.encode(image), sequence: 4)
        #expect(again.states[0] == state)
    }
}
