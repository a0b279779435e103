import Foundation
import RefundCore
import RefundStorage

/// Reads a data directory without changing it: verifies every log record and snapshot, lists segments and
/// snapshots, and dumps log records as JSON lines. Backs `refundctl wal`.
public struct DataDirectoryInspector: Sendable {
    public struct FileInfo: Sendable, Codable, Equatable {
        public var file: String
        public var bytes: Int64
    }

    public struct SnapshotInfo: Sendable, Codable, Equatable {
        public var file: String
        public var bytes: Int64
        /// The log position it covers; nil when the file is unreadable.
        public var sequence: UInt64?
        public var orders: Int?
        public var error: String?
    }

    public struct LogInfo: Sendable, Codable, Equatable {
        public var name: String
        public var segments: [FileInfo]
        public var snapshots: [SnapshotInfo]
        public var records: Int
        public var firstSequence: UInt64?
        public var lastSequence: UInt64?
        public var problems: [String]
        /// A damaged or incomplete last block at the end of the last segment: what a crash mid-write leaves, never
        /// acknowledged, and cut off at the next open. Reported, not a problem. (A corrupted last block looks
        /// the same: the log cannot tell them apart.)
        public var tornTail: String?

        enum CodingKeys: String, CodingKey {
            case name, segments, snapshots, records, problems
            case firstSequence = "first_sequence", lastSequence = "last_sequence", tornTail = "torn_tail"
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var directory: String
        public var logs: [LogInfo]
        public var ok: Bool { logs.allSatisfy { $0.problems.isEmpty } }

        enum CodingKeys: String, CodingKey {
            case directory, logs, ok
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(directory, forKey: .directory)
            try c.encode(logs, forKey: .logs)
            try c.encode(ok, forKey: .ok)
        }

        public init(directory: String, logs: [LogInfo]) {
            self.directory = directory
            self.logs = logs
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            directory = try c.decode(String.self, forKey: .directory)
            logs = try c.decode([LogInfo].self, forKey: .logs)
        }
    }

    public let directory: String
    public let fileSystem: any StorageFileSystem

    public init(directory: String, fileSystem: any StorageFileSystem = PosixFileSystem()) {
        self.directory = directory
        self.fileSystem = fileSystem
    }

    /// The logs in the directory: `p0`, `p1`, … and `control`.
    public func logNames() -> [String] {
        let names = (try? fileSystem.listDirectory(directory)) ?? []
        let partitions = names.filter { $0.hasPrefix("p") && Int($0.dropFirst()) != nil }.sorted {
            (Int($0.dropFirst()) ?? 0) < (Int($1.dropFirst()) ?? 0)
        }
        return partitions + (names.contains("control") ? ["control"] : [])
    }

    /// The layout version `engine.meta` states (`refund-engine data <n>`), when it is readable: from 2 on every
    /// log has a manifest.
    var layoutVersion: Int? {
        guard let bytes = try? fileSystem.readFile(storagePath(directory, "engine.meta")),
            let first = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first,
            first.hasPrefix("refund-engine data ")
        else { return nil }
        return Int(first.dropFirst("refund-engine data ".count))
    }

    /// Reads and checks everything: every block checksum, every record's encoding, every snapshot.
    public func verify() -> Report {
        var logs = logNames().map(inspect)
        // engine.meta names the partition count: a partition directory that is gone is every order in it.
        let meta = storagePath(directory, "engine.meta")
        if let text = try? fileSystem.readFile(meta),
            let line = String(decoding: text, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("partitions ") }),
            let count = Int(line.dropFirst("partitions ".count))
        {
            let present = Set(logs.map(\.name))
            for index in 0..<count where !present.contains("p\(index)") {
                logs.append(
                    LogInfo(
                        name: "p\(index)", segments: [], snapshots: [], records: 0,
                        problems: ["partition directory p\(index) is missing (engine.meta says \(count) partitions)"], tornTail: nil))
            }
            if !present.contains("control") {
                logs.append(LogInfo(name: "control", segments: [], snapshots: [], records: 0, problems: ["control log directory is missing"], tornTail: nil))
            }
        }
        return Report(directory: directory, logs: logs)
    }

    func inspect(_ name: String) -> LogInfo {
        let path = storagePath(directory, name)
        var info = LogInfo(name: name, segments: [], snapshots: [], records: 0, problems: [], tornTail: nil)
        let reader = LogReader(directory: path, fileSystem: fileSystem)
        do throws(StorageError) {
            for file in try reader.segmentFiles() {
                info.segments.append(FileInfo(file: file, bytes: (try? fileSystem.fileSize(storagePath(path, file))) ?? -1))
            }
            var iterator = try reader.records(from: 0)
            while let record = try iterator.next() {
                if info.firstSequence == nil { info.firstSequence = record.sequence }
                info.lastSequence = record.sequence
                info.records += 1
                if let problem = decodeProblem(name, record) {
                    info.problems.append("record \(record.sequence): \(problem)")
                }
            }
            if let torn = iterator.tornTail {
                info.tornTail = "\(torn.file): \(torn.bytes) bytes from offset \(torn.offset) (cut at the next open)"
            }
        } catch {
            info.problems.append("\(error.path ?? path)\(error.offset.map { " at byte \($0)" } ?? ""): \(error.message)")
        }
        // The manifest says which segments must exist (a deleted first or last segment is otherwise invisible).
        do throws(StorageError) {
            if let manifest = try LogManifest.read(directory: path, fileSystem: fileSystem) {
                let present = Set(info.segments.map(\.file))
                for entry in manifest.segments where !present.contains(entry.fileName) {
                    info.problems.append("segment \(entry.fileName) is listed in \(LogManifest.fileName) but missing")
                }
            } else if let version = layoutVersion, version >= 2 {
                info.problems.append("\(LogManifest.fileName) is missing")
            }
        } catch {
            info.problems.append("\(LogManifest.fileName): \(error.message)")
        }
        if name != "control", let store = try? SnapshotStore(directory: path, fileSystem: fileSystem) {
            for file in (try? store.snapshotFiles()) ?? [] {
                var snapshot = SnapshotInfo(
                    file: file, bytes: (try? fileSystem.fileSize(storagePath(path, file))) ?? -1, sequence: nil, orders: nil,
                    error: nil)
                do {
                    let bytes = try fileSystem.readFile(storagePath(path, file))
                    let decoded = try SnapshotStore.decode(bytes, path: file)
                    let image = try PartitionImageCodec.decode(decoded.payload, sequence: decoded.sequence)
                    snapshot.sequence = decoded.sequence
                    snapshot.orders = image.states.count
                } catch {
                    snapshot.error = "\(error)"
                    info.problems.append("snapshot \(file): \(error)")
                }
                info.snapshots.append(snapshot)
            }
            // The log must reach back to the newest readable snapshot.
            let covered = info.snapshots.compactMap(\.sequence).max() ?? 0
            let logFirst = (try? reader.recoveryFirstSequence()) ?? info.firstSequence
            if let first = logFirst, first > covered + 1 {
                info.problems.append(
                    "records \(covered + 1)...\(first - 1) are in neither a readable snapshot nor the log (it starts at \(first))")
            }
        }
        return info
    }

    private func decodeProblem(_ name: String, _ record: LogRecord) -> String? {
        do {
            if name == "control" { _ = try ControlLog.decode(record.bytes) } else { _ = try PartitionJournal.decode(record.bytes) }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Writes every record of the named logs (all when empty) as one JSON object per line.
    public func dumpRecords(logs: [String] = [], from sequence: UInt64 = 0, to output: (String) -> Void) throws(StorageError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for name in logs.isEmpty ? logNames() : logs {
            var iterator = try LogReader(directory: storagePath(directory, name), fileSystem: fileSystem).records(from: sequence)
            while let record = try iterator.next() {
                let lines: [DumpLine]
                if name == "control" {
                    lines = [DumpLine(log: name, sequence: record.sequence, orderID: nil, changes: nil, control: try? describe(ControlLog.decode(record.bytes)), error: nil)]
                } else {
                    // A commit batch (kind 2) is one line per commit, each with the record's sequence number.
                    do {
                        lines = try PartitionJournal.decode(record.bytes).map { entry in
                            DumpLine(
                                log: name, sequence: record.sequence, orderID: entry.orderID,
                                changes: entry.changes.map(ChangeJSON.init), control: nil, error: nil)
                        }
                    } catch {
                        lines = [DumpLine(log: name, sequence: record.sequence, orderID: nil, changes: nil, control: nil, error: "\(error)")]
                    }
                }
                for line in lines {
                    if let data = try? encoder.encode(line) { output(String(decoding: data, as: UTF8.self)) }
                }
            }
        }
    }

    private func describe(_ record: ControlLog.Record) -> String {
        switch record {
        case .started(let job):
            "job_started \(job.id) events=\(job.request.events.joined(separator: ",")) method=\(job.request.options.method.rawValue) by=\(job.caller.id)"
        case .queued(let job):
            if let processed = job.abortedAfter {
                "job_aborted \(job.id) total=\(job.total) processed=\(processed) skipped=\(job.skipped.count)"
            } else {
                "job_queued \(job.id) total=\(job.total) skipped=\(job.skipped.count)"
            }
        case .mode(let jobID, let paused): "\(paused ? "job_paused" : "job_resumed") \(jobID)"
        case .eventSettings(let settings):
            "event_settings \(settings.id) self_service_cutoff_hours=\(settings.selfServiceCutoffHours.map(String.init) ?? "-") members_only=\(settings.membersOnly)"
        case .acknowledged(let upTo): "events_acknowledged up_to=\(upTo)"
        case .event(let event): "event \(event.sequence) \(event.kind.rawValue) job=\(event.jobID ?? "-")"
        }
    }
}

struct DumpLine: Encodable {
    var log: String
    var sequence: UInt64
    var orderID: String?
    var changes: [ChangeJSON]?
    var control: String?
    var error: String?

    enum CodingKeys: String, CodingKey {
        case log, sequence, changes, control, error
        case orderID = "order_id"
    }
}
