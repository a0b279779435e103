import Logging
import Synchronization

/// A logger that writes at most ``linesPerSecond`` lines per event kind per second. Lines over the budget are
/// counted, and the next line of that kind carries `suppressed=<n>`.
final class RateLimitedLog: Sendable {
    static let linesPerSecond = 10

    private struct Window {
        var start: ContinuousClock.Instant
        var lines = 0
        var suppressed = 0
    }

    private let logger: Logger
    private let windows = Mutex<[String: Window]>([:])

    init(logger: Logger) {
        self.logger = logger
    }

    func warning(_ event: String, _ message: String, _ metadata: Logger.Metadata) {
        write(.warning, event, message, metadata)
    }

    func info(_ event: String, _ message: String, _ metadata: Logger.Metadata) {
        write(.info, event, message, metadata)
    }

    private func write(_ level: Logger.Level, _ event: String, _ message: String, _ metadata: Logger.Metadata) {
        guard logger.logLevel <= level else { return }
        let now = ContinuousClock.now
        let suppressed: Int? = windows.withLock { windows in
            var window = windows[event] ?? Window(start: now)
            if now - window.start >= .seconds(1) {
                window.start = now
                window.lines = 0
            }
            guard window.lines < Self.linesPerSecond else {
                window.suppressed += 1
                windows[event] = window
                return nil
            }
            window.lines += 1
            let left = window.suppressed
            window.suppressed = 0
            windows[event] = window
            return left
        }
        guard let suppressed else { return }
        var metadata = metadata
        metadata["event"] = "\(event)"
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.log(level: level, "\(message)", metadata: metadata)
    }
}
