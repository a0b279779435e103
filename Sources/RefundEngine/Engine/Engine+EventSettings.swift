import RefundCore
import RefundStorage

/// Per-event settings (`event.put`, `event.get`): kept in the control log, applied to the refund decisions of
/// the event's orders.
extension Engine {
    /// `event.put`: sets an event's settings (all of them: a field left nil takes the engine's setting again).
    /// Durable before it takes effect; the next refund decision of the event's orders uses it.
    @discardableResult
    public func putEvent(_ settings: EventSettings, caller: Caller) async throws(RefundError) -> EventSettings {
        try settings.validate()
        if let stopped = shared.stopped.withLock({ $0 }) { throw stopped }
        if let control {
            do throws(StorageError) {
                try await control.eventSettings(settings)
            } catch {
                shared.failStop(error, log: "control log")
                throw RefundError(.engineStopped, "the control log failed (\(error.message)); the event is unchanged")
            }
        }
        shared.setEventSettings(settings)
        return settings
    }

    /// `event.get`: an event's settings, as set (`event_not_found` when none were).
    public func eventSettings(_ id: String) throws(RefundError) -> EventSettings {
        guard let settings = shared.eventSettings.withLock({ $0[id] }) else {
            throw RefundError(.eventNotFound, "no settings for event '\(id.prefix(64))' (event.put sets them)")
        }
        return settings
    }

    /// Every event's settings, by id.
    public var allEventSettings: [EventSettings] {
        shared.eventSettings.withLock { $0.values.sorted { $0.id < $1.id } }
    }

    /// Restores the settings of every event from the control log (the last record of each event wins).
    func restoreEventSettings(_ records: [ControlLog.Record]) {
        for record in records {
            if case .eventSettings(let settings) = record { shared.setEventSettings(settings) }
        }
    }
}
