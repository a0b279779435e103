import RefundServer
import ArgumentParser

/// `refundctl event put|get`: an event's settings (`event.put`, `event.get`).
struct EventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event", abstract: "An event's settings: its own self-service cutoff, members-only.",
        subcommands: [Put.self, Get.self])

    static func show(_ settings: JSON) -> String {
        Render.keyValues([
            ("event", settings["event"]?.string ?? "-"),
            (
                "self-service cutoff",
                settings["self_service_cutoff_hours"]?.int.map { "\($0) h before the event starts" } ?? "the daemon's (--self-service-cutoff-hours)"
            ),
            (
                "members-only",
                settings["members_only"]?.bool == true ? "yes: a ticket does not go back to a purchaser holding another" : "no"
            ),
        ])
    }

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set an event's settings (all of them: one left out takes the daemon's setting again).")
        @Argument var event: String
        @Option(name: .customLong("self-service-cutoff-hours"), help: "Self-service refunds close this many hours before the event (0–8760).")
        var cutoffHours: Int64?
        @Option(name: .customLong("members-only"), help: "true | false: a member holds at most one active ticket of the event.")
        var membersOnly: Bool?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                var params: [(String, JSON)] = [("event", .string(event))]
                if let cutoffHours { params.append(("self_service_cutoff_hours", .int(cutoffHours))) }
                if let membersOnly { params.append(("members_only", .bool(membersOnly))) }
                let settings = try connection.connect().call("event.put", params)
                View.print(settings, json: output.json) { EventCommand.show($0) }
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An event's settings.")
        @Argument var event: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reporting {
                let settings = try connection.connect().call("event.get", ["event": .string(event)])
                View.print(settings, json: output.json) { EventCommand.show($0) }
            }
        }
    }
}
