import RefundCore
import Testing

@testable import RefundEngine

// `event.put`: an event's own self-service cutoff, durable, applied to the next decision of its orders.
@Suite struct EventSettingsTests {
    static let buyer = Caller.customer("cus_1")
    static let selfService = RefundOptions(lines: ["l1"], method: .balance, reason: "customer_request", selfService: true)

    static func code(_ body: () async throws(RefundError) -> Void) async -> String? {
        do throws(RefundError) {
            try await body()
            return nil
        } catch { return error.code.rawValue }
    }

    /// 19 h before the events start (2026-12-01T19:00Z): inside the engine's 24 h cutoff.
    static let late = Timestamp(iso8601: "2026-12-01T00:00:00Z")!

    @Test func anEventsOwnCutoffDecidesItsSelfServiceRefunds() async throws {
        let clock = ManualClock(Self.late)
        let engine = Fixtures.engine(clock: clock)
        try await engine.putOrder(Fixtures.tickets(id: "ord_a", event: "evt_a", count: 2))
        try await engine.putOrder(Fixtures.tickets(id: "ord_b", event: "evt_b", count: 2))
        #expect(await Self.code { () throws(RefundError) in
            _ = try await engine.createRefund(orderID: "ord_a", Self.selfService, caller: Self.buyer)
        } == "self_service_closed")

        try await engine.putEvent(EventSettings(id: "evt_a", selfServiceCutoffHours: 6), caller: Fixtures.staff)
        let refund = try await engine.createRefund(orderID: "ord_a", Self.selfService, caller: Self.buyer)
        #expect(refund.transactions.map(\.method) == [.balance])
        let preview = try await engine.preview(orderID: "ord_a", Self.selfService.with(lines: ["l2"]), caller: Self.buyer)
        #expect(preview.blocked.isEmpty, "\(preview.blocked)")
        // Another event keeps the engine's cutoff.
        #expect(await Self.code { () throws(RefundError) in
            _ = try await engine.createRefund(orderID: "ord_b", Self.selfService, caller: Self.buyer)
        } == "self_service_closed")

        // Inside the event's own cutoff, the message says whose cutoff it was.
        clock.set(Timestamp(iso8601: "2026-12-01T14:00:00Z")!)
        do throws(RefundError) {
            _ = try await engine.createRefund(orderID: "ord_a", Self.selfService.with(lines: ["l2"]), caller: Self.buyer)
            Issue.record("a refund inside the event's cutoff was accepted")
        } catch {
            #expect(error.code.rawValue == "self_service_closed")
            #expect(error.message.contains("closes 6 h before the event (event evt_a's own cutoff"), "\(error.message)")
        }

        // Setting it again without a cutoff gives the event the engine's back.
        try await engine.putEvent(EventSettings(id: "evt_a"), caller: Fixtures.staff)
        #expect(try engine.eventSettings("evt_a") == EventSettings(id: "evt_a"))
        clock.set(Self.late)
        #expect(await Self.code { () throws(RefundError) in
            _ = try await engine.createRefund(orderID: "ord_a", Self.selfService.with(lines: ["l2"]), caller: Self.buyer)
        } == "self_service_closed")
    }

    @Test func badSettingsAreRefusedAndChangeNothing() async throws {
        let engine = Fixtures.engine()
        for (settings, expected) in [
            (EventSettings(id: "evt_a", selfServiceCutoffHours: -1), "invalid_field"),
            (EventSettings(id: "evt_a", selfServiceCutoffHours: 8_761), "invalid_field"),
            (EventSettings(id: "", selfServiceCutoffHours: 6), "invalid_handle"),
        ] {
            #expect(await Self.code { () throws(RefundError) in try await engine.putEvent(settings, caller: Fixtures.staff) } == expected)
        }
        #expect(await Self.code { () throws(RefundError) in _ = try engine.eventSettings("evt_a") } == "event_not_found")
        #expect(engine.allEventSettings.isEmpty)
    }

    @Test(arguments: [false, true])
    func settingsSurviveARestart(killed: Bool) async throws {
        let dir = TemporaryDirectory("events")
        func open() async throws -> Engine {
            try await Engine.open(
                configuration: EngineConfiguration(partitions: 2), durability: DurabilityOptions(directory: dir.path),
                gateway: SimulatedGateway(), clock: ManualClock(Self.late))
        }
        let first = try await open()
        try await first.putOrder(Fixtures.tickets(id: "ord_a", event: "evt_a", count: 1))
        try await first.putEvent(EventSettings(id: "evt_a", selfServiceCutoffHours: 2), caller: Fixtures.staff)
        try await first.putEvent(EventSettings(id: "evt_a", selfServiceCutoffHours: 6), caller: Fixtures.staff)
        try await first.putEvent(EventSettings(id: "evt_z", selfServiceCutoffHours: 48), caller: Fixtures.staff)
        if killed { first.kill() } else { try await first.close() }
        let second = try await open()
        #expect(second.allEventSettings == [
            EventSettings(id: "evt_a", selfServiceCutoffHours: 6), EventSettings(id: "evt_z", selfServiceCutoffHours: 48),
        ])
        _ = try await second.createRefund(orderID: "ord_a", Self.selfService, caller: Self.buyer)
        try await second.close()
    }
}

extension RefundOptions {
    func with(lines: [String]) -> RefundOptions {
        var copy = self
        copy.lines = lines
        return copy
    }
}
