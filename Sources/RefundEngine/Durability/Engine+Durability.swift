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
        var summary = RecoverySummary(
            partitions: configuration.partitions, ordersFromSnapshots: 0, recordsReplayed: 0, tornTails: [], repairs: [],
            skippedSnapshots: [], resumedJobs: [])
        var journals: [PartitionJournal?] = []
        var images: [PartitionImage?] = []
        var logs: [[PartitionJournal.Entry]] = []
        var controlRecords: [ControlLog.Record] = []
        let control: ControlLog
        do throws(StorageError) {
            try fs.createDirectory(root)
            try checkLayout(root: root, partitions: configuration.partitions, fileSystem: fs)
            // Partitions load in parallel: reading, decompressing and decoding snapshots and logs is most of a
            // recovery's time, and each partition's files are its own.
            let results = await withTaskGroup(of: (Int, Result<LoadedPartition, StorageError>).self) { group in
                for index in 0..<configuration.partitions {
                    group.addTask {
                        do throws(StorageError) {
                            return (index, .success(try loadPartition(index, root: root, durability: durability)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var results = [Result<LoadedPartition, StorageError>?](repeating: nil, count: configuration.partitions)
                for await (index, result) in group { results[index] = result }
                return results
            }
            for result in results {
                guard let result else { continue }
                let partition = try result.get()
                summary.skippedSnapshots += partition.skippedSnapshots
                note(partition.journal.log.recovery, into: &summary)
                images.append(partition.image)
                logs.append(partition.entries)
                journals.append(partition.journal)
            }
            let controlDirectory = storagePath(root, "control")
            let controlLog = try WriteAheadLog(
                directory: controlDirectory, fileSystem: fs, fsync: .always, repair: durability.repair)
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
        } catch {
            throw RefundError(
                error.code == .corruption ? .dataCorrupt : .storageFailed,
                "cannot open data directory \(root): \(error.message)\(error.path.map { " (\($0)\(error.offset.map { " at byte \($0)" } ?? ""))" } ?? "")"
            )
        }

        let engine = Engine(
            configuration: configuration, gateway: gateway, clock: clock, journals: journals, durability: durability,
            control: control, recovery: nil)
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
        summary.resumedJobs = await engine.restoreJobs(controlRecords)
        engine.recoveredSummary.withLock { $0 = summary }
        return engine
    }

    /// One partition's files, read and decoded: its log (opened for appending, torn tail cut), the newest
    /// readable snapshot, and the log entries after it.
    struct LoadedPartition: Sendable {
        var journal: PartitionJournal
        var image: PartitionImage?
        var entries: [PartitionJournal.Entry]
        var skippedSnapshots: [String]
    }

    static func loadPartition(_ index: Int, root: String, durability: DurabilityOptions) throws(StorageError)
        -> LoadedPartition
    {
        let fs = durability.fileSystem
        let directory = storagePath(root, "p\(index)")
        try fs.createDirectory(directory)
        let snapshots = try SnapshotStore(directory: directory, fileSystem: fs)
        let loaded = try snapshots.loadNewest()
        let covered = loaded.snapshot?.sequence ?? 0
        let log = try WriteAheadLog(
            directory: directory, fileSystem: fs, fsync: durability.fsync, segmentBytes: durability.segmentBytes,
            repair: durability.repair, startingSequence: covered + 1)
        var entries: [PartitionJournal.Entry] = []
        var iterator = try LogReader(directory: directory, fileSystem: fs).records(from: covered + 1)
        while let record = try iterator.next() {
            do throws(BinaryDecodingError) {
                entries.append(try PartitionJournal.decode(record.bytes))
            } catch {
                throw StorageError.corruption(
                    "log record \(record.sequence) does not decode: \(error.message)", path: directory,
                    offset: Int64(error.offset))
            }
        }
        var image: PartitionImage?
        if let snapshot = loaded.snapshot {
            do throws(BinaryDecodingError) {
                image = try PartitionImageCodec.decode(snapshot.payload, sequence: snapshot.sequence)
            } catch {
                throw StorageError.corruption(
                    "snapshot \(snapshot.sequence) does not decode: \(error.message)", path: directory,
                    offset: Int64(error.offset))
            }
        }
        let journal = PartitionJournal(directory: directory, log: log, snapshots: snapshots)
        journal.markSnapshot(covered)
        return LoadedPartition(
            journal: journal, image: image, entries: entries,
            skippedSnapshots: loaded.skipped.map { "\($0.file): \($0.reason)" })
    }

    /// What recovery found when this engine opened its data directory (nil for an in-memory engine).
    public var recoverySummary: RecoverySummary? { recoveredSummary.withLock { $0 } }

    private static func note(_ report: RecoveryReport, into summary: inout RecoverySummary) {
        if let torn = report.tornTail { summary.tornTails.append("\(torn.file): \(torn.bytesRemoved) bytes") }
        if let repair = report.repair {
            summary.repairs.append(
                "\(repair.file): cut at byte \(repair.offset), first dropped record \(repair.firstDroppedSequence)")
        }
    }

    /// A data directory is laid out for one partition count: an order's log is its partition's log.
    private static func checkLayout(root: String, partitions: Int, fileSystem fs: any StorageFileSystem)
        throws(StorageError)
    {
        let path = storagePath(root, "engine.meta")
        let expected = "refund-engine data 1\npartitions \(partitions)\n"
        if fs.fileExists(path) {
            let found = String(decoding: try fs.readFile(path), as: UTF8.self)
            guard found == expected else {
                throw StorageError(
                    code: .invalidArgument,
                    message: "the data directory was written with another layout (\(found.split(separator: "\n").last ?? "?")); start with the same partition count",
                    path: path)
            }
            return
        }
        let temporary = path + ".tmp"
        let handle = try fs.createForAppend(temporary)
        try fs.write(handle, Array(expected.utf8))
        try fs.fsync(handle)
        try fs.close(handle)
        try fs.rename(from: temporary, to: path)
        try fs.fsyncDirectory(root)
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
            let failure = RefundError(
                .engineStopped, "the write-ahead log failed (\(error.message)); the engine accepts no more changes")
            shared.stop(failure)
            throw failure
        }
        maybeSnapshot(partition, journal)
    }

    // MARK: Snapshots

    /// Writes a snapshot of every partition now and drops the log segments the previous snapshot covers.
    public func snapshot() async throws(RefundError) {
        for partition in partitions { try await snapshot(partition) }
    }

    func snapshot(_ partition: Partition) async throws(RefundError) {
        guard let journal = partition.journal else { return }
        let image = await partition.captureImage()
        do throws(StorageError) {
            // A partition that never logged anything has nothing to wait for (and a snapshot covering 0).
            if image.sequence > 0 { try await journal.log.waitDurable(image.sequence) }
        } catch {
            throw RefundError(.engineStopped, "the write-ahead log failed (\(error.message))")
        }
        // Encoding and writing happen off the partition: writes go on meanwhile (the image is copy-on-write).
        let payload = PartitionImageCodec.encode(image)
        do throws(StorageError) {
            _ = try journal.snapshots.write(payload, coveringUpTo: image.sequence)
            // Keep the log back to the previous snapshot, so the older snapshot stays a replayable fallback.
            let previous = journal.markSnapshot(image.sequence)
            if previous > 0 { try journal.log.removeSegments(coveredUpTo: previous) }
        } catch {
            throw RefundError(.storageFailed, "snapshot of partition \(partition.index) failed: \(error.message)")
        }
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
            try? await self.snapshot(partition)
            _ = self.snapshotting.withLock { $0.remove(partition.index) }
        }
    }

    /// Clean shutdown: stops background work, writes a snapshot of every partition and closes the logs.
    public func close() async throws(RefundError) {
        shutdown()
        guard durability != nil else { return }
        try await snapshot()
        do throws(StorageError) {
            for partition in partitions { try partition.journal?.log.close() }
            try control?.log.close()
        } catch {
            throw RefundError(.storageFailed, "closing the log failed: \(error.message)")
        }
    }
}
