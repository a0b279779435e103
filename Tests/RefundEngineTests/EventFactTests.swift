import RefundCore
import RefundEngine
import RefundStorage
import Testing

/// Issue 7 item 9: an event is a fact. A `refund.failed` event read later, or after a restart, carries the failure
/// it announced, not the transaction's latest one.
@Suite struct EventFactTests {
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
}
