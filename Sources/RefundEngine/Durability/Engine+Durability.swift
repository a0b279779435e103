import RefundCore
import RefundStorage

extension Engine {
    /// Opens (or creates) a durable engine on a data directory: loads each partition's newest snapshot, replays
    /// its log after it, and resumes bulk jobs a crash interrupted. Every change acknowledged from then on is in
    /// the write-ahead log under the fsync policy before the call that made it returns.
    ///
    /// Refuses to start (`data_corrupt`, naming the file and offset) when a log is damaged anywhere but its torn
    /// last block, unless `durability.repair` is set.
    public static func open(
        configuration: EngineConfiguration = EngineConfiguration(), durability: DurabilityOptions,
        gateway: any PaymentGateway = SimulatedGateway(), clock: any EngineClock = SystemClock()
    ) async throws(RefundError) -> Engine {
        let fs = durability.fileSystem
        let root = durability.directory
        let openedAt = ContinuousClock.now
        var summary = RecoverySummary(
            partitions: configuration.partitions, ordersFromSnapshots: 0, recordsReplayed: 0, tornTails: [], repairs: [],
            skippedSnapshots: [], resumedJobs: [])
        var journals: [PartitionJournal?] = []
        var images: [PartitionImage?] = []
        var logs: [[PartitionJournal.Entry]] = []
        var controlRecords: [ControlLog.Record] = []
        let control: ControlLog
        var lock: StorageFileHandle?
        var run: IDRun
        do throws(StorageError) {
            try fs.createDirectoryDurably(root)
            // One engine per data directory: a second daemon started by mistake must not write the same logs.
            lock = try fs.lockExclusive(storagePath(root, lockFileName), owner: "held by process \(currentProcessID())")
            let (layout, runRequired, current) = try checkLayout(
                root: root, partitions: configuration.partitions, fileSystem: fs, repair: durability.repair)
            // Partitions load in parallel: reading, decompressing and decoding snapshots and logs is most of a
            // recovery's time, and each partition's files are its own.
            let results = await withTaskGroup(of: (Int, Result<LoadedPartition, StorageError>).self) { group in
                for index in 0..<configuration.partitions {
                    group.addTask {
                        do throws(StorageError) {
                            return (index, .success(try loadPartition(index, root: root, durability: durability, layout: layout)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var results = [Result<LoadedPartition, StorageError>?](repeating: nil, count: configuration.partitions)
                for await (index, result) in group { results[index] = result }
                return results
            }
            var firstError: StorageError?
            for result in results {
                guard let result else { continue }
                switch result {
                case .success(let partition):
                    summary.skippedSnapshots += partition.skippedSnapshots
                    summary.missing += partition.missing
                    note(partition.journal.log.recovery, into: &summary)
                    images.append(partition.image)
                    logs.append(partition.entries)
                    journals.append(partition.journal)
                case .failure(let error):
                    if firstError == nil { firstError = error }
                }
            }
            if let firstError {
                // Close what did open, so nothing keeps writing (or holding) the directory.
                for journal in journals { journal?.log.abandon() }
                throw firstError
            }
            let controlDirectory = storagePath(root, "control")
            let controlLog = try WriteAheadLog(
                directory: controlDirectory, fileSystem: fs, fsync: .always, repair: durability.repair,
                requireManifest: layout == .existing, metrics: logMetrics("control", durability))
            note(controlLog.recovery, into: &summary)
            var iterator = try LogReader(directory: controlDirectory, fileSystem: fs).records(from: 0)
            while let record = try iterator.next() {
                do throws(BinaryDecodingError) {
                    controlRecords.append(try ControlLog.decode(record.bytes))
                } catch {
                    throw StorageError.corruption(
                        "control record \(record.sequence) does not decode: \(error.message)", path: controlDirectory,
                        offset: Int64(error.offset))
                }
            }
            control = ControlLog(log: controlLog)
            run = try advanceRun(
                root: root, fileSystem: fs, required: runRequired, repair: durability.repair, now: clock.now(),
                gaveUp: !summary.repairs.isEmpty || !summary.missing.isEmpty)
            if let note = run.repaired { summary.repairs.append(note) }
            // Written last: from then on every log, manifest and engine.run must exist.
            if layout != .existing || !runRequired || !current {
                try writeLayout(root: root, partitions: configuration.partitions, fileSystem: fs)
            }
        } catch {
            for journal in journals { journal?.log.abandon() }
            if let lock { fs.unlock(lock) }
            let code: RefundError.Code =
                switch error.code {
                case .corruption: .dataCorrupt
                case .missing: .dataMissing
                case .locked: .dataDirectoryLocked
                default: .storageFailed
                }
            throw RefundError(
                code,
                "cannot open data directory \(root): \(error.message)\(error.path.map { " (\($0)\(error.offset.map { " at byte \($0)" } ?? ""))" } ?? "")"
            )
        }

        let engine = Engine(
            configuration: configuration, gateway: gateway, clock: clock, journals: journals, durability: durability,
            control: control, recovery: nil)
        engine.directoryLock.withLock { $0 = lock }
        // An id a power loss (fsync interval or never) or a repair could have forgotten must never name another
        // refund: such engines put the run number into the ids they make.
        if case .always = durability.fsync, !run.tagged {} else { engine.shared.tagIDs(withRun: run.number) }
        engine.shared.logger.withLock { $0 = durability.logger }
        var parents = Set<String>()
        for index in engine.partitions.indices {
            summary.ordersFromSnapshots += images[index]?.states.count ?? 0
            summary.recordsReplayed += logs[index].count
        }
        // Each partition restores and replays its own log, all at once.
        await withTaskGroup(of: Set<String>.self) { group in
            for (index, partition) in engine.partitions.enumerated() {
                let image = images[index]
                let entries = logs[index]
                group.addTask {
                    var found = Set<String>()
                    if let image { found.formUnion(await partition.restore(image)) }
                    found.formUnion(await partition.replay(entries).parents)
                    return found
                }
            }
            for await found in group { parents.formUnion(found) }
        }
        engine.parents.withLock { $0.formUnion(parents) }
        await engine.restoreOutbox(controlRecords)
        engine.restoreEventSettings(controlRecords)
        summary.resumedJobs = await engine.restoreJobs(controlRecords)
        for partition in engine.partitions { await partition.markRecovered() }
        engine.recoveredSummary.withLock { $0 = summary }
        let metrics = engine.shared.metrics
        metrics.recoveryDuration.record((ContinuousClock.now - openedAt).seconds)
        metrics.recoveryRecords.record(summary.recordsReplayed)
        metrics.recoveryOrders.record(summary.ordersFromSnapshots)
        metrics.recoveryRepairs.record(summary.repairs.count + summary.missing.count)
        if !summary.repairs.isEmpty || !summary.missing.isEmpty || !summary.obsoleteSegments.isEmpty {
            durability.logger.warning(
                "repair gave up data",
                metadata: [
                    "event": "repair", "repairs": "\(summary.repairs)", "missing": "\(summary.missing)",
                    "obsolete_segments": "\(summary.obsoleteSegments)",
                ])
        }
        if !summary.skippedSnapshots.isEmpty {
            durability.logger.warning(
                "unreadable snapshots set aside", metadata: ["event": "snapshot_skipped", "files": "\(summary.skippedSnapshots)"])
        }
        return engine
    }

    static let lockFileName = "engine.lock"

    /// One partition's files, read and decoded: its log (opened for appending, torn tail cut), the newest
    /// readable snapshot, and the log entries after it.
    struct LoadedPartition: Sendable {
        var journal: PartitionJournal
        var image: PartitionImage?
        var entries: [PartitionJournal.Entry]
        var skippedSnapshots: [String]
        var missing: [String]
    }

    static func loadPartition(_ index: Int, root: String, durability: DurabilityOptions, layout: Layout) throws(StorageError)
        -> LoadedPartition
    {
        let fs = durability.fileSystem
        let directory = storagePath(root, "p\(index)")
        if layout == .existing, !fs.fileExists(directory), !durability.repair {
            throw StorageError(
                code: .missing,
                message: "partition directory \(directory) is missing: every order of partition \(index) is gone (start with repair to go on without it)",
                path: directory)
        }
        try fs.createDirectoryDurably(directory)
        let snapshots = try SnapshotStore(directory: directory, fileSystem: fs)
        let loaded = try snapshots.loadNewest()
        let covered = loaded.snapshot?.sequence ?? 0
        let log = try WriteAheadLog(
            directory: directory, fileSystem: fs, fsync: durability.fsync, segmentBytes: durability.segmentBytes,
            repair: durability.repair, startingSequence: covered + 1, requireManifest: layout == .existing,
            metrics: logMetrics("p\(index)", durability))
        var missing = log.recovery.missingSegments
        // The log must reach back to the snapshot: records between what the snapshot covers and the log's first
        // record are nowhere (snapshots deleted or unreadable, or the first segment gone).
        if log.recovery.firstSequence > covered + 1 {
            let gap = "records \(covered + 1)...\(log.recovery.firstSequence - 1) of \(directory) (\(loaded.snapshot == nil ? "no readable snapshot" : "the newest readable snapshot covers up to \(covered)")\(loaded.skipped.isEmpty ? "" : "; unreadable: \(loaded.skipped.map(\.file).joined(separator: ", "))"))"
            guard durability.repair else {
                log.abandon()
                throw StorageError(
                    code: .missing,
                    message: "acknowledged data is missing: \(gap) are in neither a snapshot nor the log (start with repair to go on without them)",
                    path: directory)
            }
            missing.append(gap)
        }
        var entries: [PartitionJournal.Entry] = []
        do throws(StorageError) {
            var iterator = try LogReader(directory: directory, fileSystem: fs).records(from: covered + 1)
            while let record = try iterator.next() {
                do throws(BinaryDecodingError) {
                    entries.append(contentsOf: try PartitionJournal.decode(record.bytes))
                } catch {
                    throw StorageError.corruption(
                        "log record \(record.sequence) does not decode: \(error.message)", path: directory,
                        offset: Int64(error.offset))
                }
            }
        } catch {
            log.abandon()
            throw error
        }
        var image: PartitionImage?
        if let snapshot = loaded.snapshot {
            do throws(BinaryDecodingError) {
                image = try PartitionImageCodec.decode(snapshot.payload, sequence: snapshot.sequence)
            } catch {
                log.abandon()
                throw StorageError.corruption(
                    "snapshot \(snapshot.sequence) does not decode: \(error.message)", path: directory,
                    offset: Int64(error.offset))
            }
        }
        // Unreadable snapshots are set aside so pruning never counts them as one of the snapshots to keep.
        try snapshots.quarantine(loaded.skipped)
        let journal = PartitionJournal(directory: directory, log: log, snapshots: snapshots)
        journal.markSnapshot(covered)
        journal.recovered(at: log.nextSequence - 1)
        return LoadedPartition(
            journal: journal, image: image, entries: entries,
            skippedSnapshots: loaded.skipped.map { "\($0.file): \($0.reason)" }, missing: missing)
    }

    /// What recovery found when this engine opened its data directory (nil for an in-memory engine).
    public var recoverySummary: RecoverySummary? { recoveredSummary.withLock { $0 } }

    private static func note(_ report: RecoveryReport, into summary: inout RecoverySummary) {
        if let torn = report.tornTail { summary.tornTails.append("\(torn.file): \(torn.bytesRemoved) bytes") }
        if let repair = report.repair {
            summary.repairs.append(
                "\(repair.file): cut at byte \(repair.offset) (\(repair.reason)), \(repair.totalBytesDropped) bytes dropped, first dropped record \(repair.firstDroppedSequence)\(repair.removedSegments.isEmpty ? "" : ", later segments removed: \(repair.removedSegments.joined(separator: ", "))")")
        }
        summary.missing += report.missingSegments
        summary.obsoleteSegments += report.obsoleteSegments
    }

    /// Whether the data directory was new, written by a version without manifests, or is ours.
    enum Layout: Sendable, Equatable {
        /// No `engine.meta`: a first start (or a crash during one, before anything was acknowledged).
        case new
        /// Written before logs had manifests: they are created now.
        case legacy
        /// Every log has a manifest and every partition directory must exist.
        case existing
    }

    /// 3: `engine.run` must exist too (2: every log has a manifest; 1: neither).
    static let layoutVersion = 5

    static func layoutText(version: Int, partitions: Int) -> String {
        "refund-engine data \(version)\npartitions \(partitions)\n"
    }

    /// A data directory is laid out for one partition count: an order's log is its partition's log. Also says
    /// whether `engine.run` must exist (version 3; a version 2 directory gets one now).
    private static func checkLayout(root: String, partitions: Int, fileSystem fs: any StorageFileSystem, repair: Bool)
        throws(StorageError) -> (Layout, runRequired: Bool, current: Bool)
    {
        let path = storagePath(root, "engine.meta")
        // A temp file left by a crash while writing the meta is never the truth: the rename had not happened.
        if fs.fileExists(path + ".tmp") { try fs.remove(path + ".tmp") }
        guard fs.fileExists(path) else { return (.new, false, false) }
        let found = String(decoding: try fs.readFile(path), as: UTF8.self)
        if found == layoutText(version: layoutVersion, partitions: partitions) { return (.existing, true, true) }
        // Layout 4 is layout 5 without commit batches (partition log records of kind 2), layout 3 also without
        // control records of kinds 6 to 8 (bulk pause, resume, abort): they open as they are and say 5 from then
        // on, so an older engine refuses the directory instead of meeting records it cannot read.
        if found == layoutText(version: 4, partitions: partitions) { return (.existing, true, false) }
        if found == layoutText(version: 3, partitions: partitions) { return (.existing, true, false) }
        if found == layoutText(version: 2, partitions: partitions) { return (.existing, false, false) }
        if found == layoutText(version: 1, partitions: partitions) { return (.legacy, false, false) }
        throw StorageError(
            code: .invalidArgument,
            message: "the data directory was written with another layout (\(found.split(separator: "\n").joined(separator: ", "))); start with the same partition count",
            path: path)
    }

    /// Written last on a first start, once every log and its manifest exist: from then on they must.
    private static func writeLayout(root: String, partitions: Int, fileSystem fs: any StorageFileSystem)
        throws(StorageError)
    {
        try fs.replaceAtomically(
            storagePath(root, "engine.meta"), with: Array(layoutText(version: layoutVersion, partitions: partitions).utf8))
    }

    // MARK: Metrics

    /// The metrics of one log; an fsync slower than `durability.slowFsync` is logged (warning, once per fsync).
    static func logMetrics(_ name: String, _ durability: DurabilityOptions) -> LogMetrics {
        var metrics = LogMetrics.named(name)
        metrics.slowFsyncThreshold = durability.slowFsync
        let logger = durability.logger
        metrics.slowFsync = { duration in
            logger.warning(
                "slow fsync: \(duration) on log \(name)",
                metadata: ["event": "slow_fsync", "log": "\(name)", "milliseconds": "\(duration.wholeMilliseconds)"])
        }
        return metrics
    }

    // MARK: Run number

    /// The run count of a data directory (`engine.run`) and whether its ids carry it for good.
    struct IDRun {
        var number: UInt64
        /// Set once a repair gave something up here: ids it forgot could otherwise be made again.
        var tagged: Bool
        /// What a repair of an unreadable `engine.run` did, for the recovery summary.
        var repaired: String?
    }

    static func runText(_ run: IDRun) -> String { "run \(run.number)\nids \(run.tagged ? "tagged" : "plain")\n" }

    static func parseRun(_ text: String) -> IDRun? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == 3, lines[2].isEmpty, lines[0].hasPrefix("run "), let number = UInt64(lines[0].dropFirst(4)),
            number >= 1, number < UInt64(Int64.max), lines[1] == "ids tagged" || lines[1] == "ids plain"
        else { return nil }
        return IDRun(number: number, tagged: lines[1] == "ids tagged")
    }

    /// Counts this open in `engine.run` (written crash-atomically before anything is accepted), so that every
    /// run of the engine on this directory has its own number. An unreadable file is `data_corrupt`, a missing
    /// one that must exist `data_missing`; with repair the count restarts at the clock in milliseconds (above any
    /// count of opens) and ids are tagged from then on.
    static func advanceRun(
        root: String, fileSystem fs: any StorageFileSystem, required: Bool, repair: Bool, now: Timestamp, gaveUp: Bool
    ) throws(StorageError) -> IDRun {
        let path = storagePath(root, "engine.run")
        if fs.fileExists(path + ".tmp") { try fs.remove(path + ".tmp") }
        var run = IDRun(number: 1, tagged: gaveUp)
        let restart = UInt64(max(now.milliseconds, 1))
        if !fs.fileExists(path), required {
            guard repair else {
                throw StorageError(
                    code: .missing, message: "engine.run is missing (engine.meta says it must exist)", path: path)
            }
            run = IDRun(
                number: restart, tagged: true,
                repaired: "engine.run (missing: the run count restarts at \(restart) and ids carry it from now on)")
        } else if fs.fileExists(path) {
            let text = String(decoding: try fs.readFile(path), as: UTF8.self)
            if let previous = parseRun(text) {
                run = IDRun(number: previous.number + 1, tagged: previous.tagged || gaveUp)
            } else if repair {
                run = IDRun(
                    number: restart, tagged: true,
                    repaired: "engine.run (unreadable: the run count restarts at \(restart) and ids carry it from now on)")
            } else {
                throw StorageError.corruption("engine.run is not 'run <n>' and 'ids plain|tagged'", path: path, offset: 0)
            }
        }
        try fs.replaceAtomically(path, with: Array(runText(run).utf8))
        return run
    }

    // MARK: Acknowledgement

    /// Waits until everything `partition` has appended is durable. Called after every operation that changed
    /// something and before its answer goes out: that is what acknowledged means.
    func durable(_ partition: Partition) async throws(RefundError) {
        guard let journal = partition.journal else { return }
        if let stopped = shared.stopped.withLock({ $0 }) { throw stopped }
        do throws(StorageError) {
            try await journal.waitForAppended()
        } catch {
            throw shared.failStop(error, log: "write-ahead log of partition \(partition.index)")
        }
        if let waiting = shared.deferredJobEventSequence(partition: partition.index) {
            // A job's completion is announced only once the change that completed it is fsynced, whatever the
            // policy: the control log fsyncs every event, and under `.interval` or `.never` "durable" above means
            // written, not on disk. Rare (once per job), so this request waits for one fsync.
            do throws(StorageError) {
                try await journal.log.waitSynced(waiting)
            } catch {
                throw shared.failStop(error, log: "write-ahead log of partition \(partition.index)")
            }
            shared.publishDeferredJobEvents(partition: partition.index, durable: journal.log.syncedSequence)
        }
        maybeSnapshot(partition, journal)
    }

    /// Waits until everything `partition` appended is fsynced, whatever the policy: the gate before a gateway
    /// call. Under `.always` it is the same as ``durable(_:)``.
    func syncedBeforeSending(_ partition: Partition) async throws(RefundError) {
        guard let journal = partition.journal else { return }
        if let stopped = shared.stopped.withLock({ $0 }) { throw stopped }
        do throws(StorageError) {
            try await journal.waitForAppendedSynced()
        } catch {
            throw shared.failStop(error, log: "write-ahead log of partition \(partition.index)")
        }
    }

    // MARK: Snapshots

    /// Writes a snapshot of every partition now and drops the log segments every kept snapshot covers.
    public func snapshot() async throws(RefundError) {
        for partition in partitions { try await snapshot(partition) }
    }

    func snapshot(_ partition: Partition) async throws(RefundError) {
        guard let journal = partition.journal else { return }
        // One snapshot of a partition at a time (the `snapshot` op, the automatic trigger and close can race).
        let held = await snapshotLocks.acquire("p\(partition.index)")
        do throws(RefundError) {
            try await writeSnapshot(partition, journal)
            await held.release()
        } catch {
            await held.release()
            snapshotHealth.withLock { $0.failed(error.message, at: clock.now()) }
            shared.metrics.snapshotsFailed.increment()
            shared.logger.withLock { $0 }.error(
                "snapshot failed: \(error.message)", metadata: ["event": "snapshot_failed", "partition": "\(partition.index)"])
            throw error
        }
    }

    private func writeSnapshot(_ partition: Partition, _ journal: PartitionJournal) async throws(RefundError) {
        if let stopped = shared.stopped.withLock({ $0 }) { throw stopped }
        let image = await partition.captureImage()
        // A snapshot never covers less than the one before it (recovery positions the partition at its log's
        // end, so even a partition with no new writes captures a position at or past its snapshot).
        precondition(image.sequence >= journal.lastSnapshot, "a snapshot must cover at least what the previous one did")
        // Nothing new since the newest snapshot: writing it again would only churn files.
        if image.sequence == journal.lastSnapshot, image.sequence > 0,
            (try? journal.snapshots.sequences().first) == image.sequence
        {
            return
        }
        do throws(StorageError) {
            // A partition that never logged anything has nothing to wait for (and a snapshot covering 0).
            if image.sequence > 0 { try await journal.log.waitDurable(image.sequence) }
        } catch {
            throw RefundError(.engineStopped, "the write-ahead log failed (\(error.message))")
        }
        // Encoding and writing happen off the partition: writes go on meanwhile (the image is copy-on-write).
        let started = ContinuousClock.now
        let payload = PartitionImageCodec.encode(image)
        do throws(StorageError) {
            _ = try journal.snapshots.write(payload, coveringUpTo: image.sequence)
            journal.markSnapshot(image.sequence)
            // Trim only what every kept snapshot covers, so the older one stays a replayable fallback.
            if let oldest = try journal.snapshots.sequences().last, oldest > 0 {
                try journal.log.removeSegments(coveredUpTo: oldest)
            }
        } catch {
            throw RefundError(.storageFailed, "snapshot of partition \(partition.index) failed: \(error.message)")
        }
        let now = clock.now()
        snapshotHealth.withLock { $0.succeeded(at: now) }
        let took = ContinuousClock.now - started
        shared.metrics.snapshotDuration.recordNanoseconds(took.wholeNanoseconds)
        shared.metrics.snapshotsWritten.increment()
        shared.metrics.snapshotLastSuccess.record(Double(now.milliseconds) / 1000)
        shared.logger.withLock { $0 }.info(
            "snapshot written",
            metadata: [
                "event": "snapshot", "partition": "\(partition.index)", "sequence": "\(image.sequence)",
                "orders": "\(image.states.count)", "bytes": "\(payload.count)",
                "milliseconds": "\(took.wholeMilliseconds)",
            ])
    }

    private func maybeSnapshot(_ partition: Partition, _ journal: PartitionJournal) {
        guard let durability else { return }
        let byRecords = durability.snapshotEveryRecords > 0 && journal.recordsSinceSnapshot >= durability.snapshotEveryRecords
        let byBytes = durability.snapshotEveryBytes > 0 && journal.recordBytesSinceSnapshot >= durability.snapshotEveryBytes
        guard byRecords || byBytes else { return }
        let start = snapshotting.withLock { $0.insert(partition.index).inserted }
        guard start else { return }
        journal.resetSnapshotCounter()
        Task {
            // A failure is recorded in snapshotHealth (stats: last_snapshot_error) by snapshot(_:); the log keeps
            // everything, so the next trigger simply tries again.
            do throws(RefundError) {
                try await self.snapshot(partition)
            } catch {}
            _ = self.snapshotting.withLock { $0.remove(partition.index) }
        }
    }

    /// Clean shutdown: stops background work, writes a snapshot of every partition and closes the logs.
    public func close() async throws(RefundError) {
        shutdown()
        guard durability != nil else { return }
        defer { releaseDirectory() }
        do throws(RefundError) {
            try await snapshot()
        } catch {
            // The logs still hold everything; close them so nothing is lost, and report the snapshot failure.
            for partition in partitions { try? partition.journal?.log.close() }
            try? control?.log.close()
            throw error
        }
        // The snapshot made every partition's log durable: job events waiting for that go out before the control
        // log closes (else the next start would announce them again).
        for partition in partitions {
            if let journal = partition.journal {
                // On disk: what is fsynced, and what the snapshot just written covers.
                shared.publishDeferredJobEvents(
                    partition: partition.index, durable: max(journal.log.syncedSequence, journal.lastSnapshot))
            }
        }
        do throws(StorageError) {
            for partition in partitions { try partition.journal?.log.close() }
            try control?.log.close()
        } catch {
            throw RefundError(.storageFailed, "closing the log failed: \(error.message)")
        }
    }

    /// Stops the engine the way `kill -9` stops a process: background work ends, nothing queued is written, the
    /// logs are closed as they are and the directory lock is released. No snapshot, no fsync. What a crash would
    /// keep is what the next ``open(configuration:durability:gateway:clock:)`` finds. For crash tests and
    /// simulations that reopen a directory in the same process.
    public func kill() {
        shutdown()
        shared.stop(RefundError(.engineStopped, "the engine was killed"))
        for partition in partitions { partition.journal?.log.abandon() }
        control?.log.abandon()
        releaseDirectory()
    }

    private func releaseDirectory() {
        guard let durability else { return }
        if let lock = directoryLock.withLock({ held -> StorageFileHandle? in
            defer { held = nil }
            return held
        }) {
            durability.fileSystem.unlock(lock)
        }
    }
}
