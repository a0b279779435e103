import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// When a record counts as durable for ``WriteAheadLog/waitDurable(_:)``.
public enum FsyncPolicy: Sendable, Equatable {
    /// After the block holding it is written and fsynced. Survives power loss. Group commit shares each fsync
    /// among everything appended while the previous one ran.
    case always
    /// After the block is written (into the OS page cache); fsync follows at most this long after the first
    /// unsynced write. A process crash loses nothing; power loss or a kernel crash loses up to the interval.
    case interval(milliseconds: Int)
    /// After the block is written; fsync only when a segment rolls and on `close()`. A process crash loses
    /// nothing; power loss can lose everything since the last roll.
    case never
}

/// The write-ahead log: appends records, assigns them consecutive sequence numbers, writes them in compressed,
/// checksummed blocks and tells waiters when they are durable.
///
/// ## Threading
/// Callers only take a `Mutex` for a moment: `append` queues the record and assigns its sequence number,
/// `waitDurable` parks a continuation. One dedicated flusher thread (not a Swift concurrency task) does all file
/// I/O. A dedicated thread, because `write` and `fsync` block for milliseconds: on the cooperative pool (one thread
/// per core, two here) a blocked fsync would stall unrelated tasks, and a serial loop there would either block the
/// pool or need a thread anyway. The flusher sleeps on a POSIX semaphore; appends post it once per wake-up.
///
/// ## Group commit
/// The flusher takes *everything* queued, writes it as one or more blocks with a single `write`, fsyncs once
/// (`.always`), then resumes every waiter it covered. Whatever is appended while that runs is taken by the next
/// round as a whole, so a waiter is never more than one fsync behind the one in progress.
///
/// ## Failures are fatal
/// A failed `write` or `fsync` poisons the log: the error is recorded, every waiting and every later
/// `waitDurable`/`append` fails with it, and nothing is retried. After a failed fsync Linux may already have
/// dropped the dirty pages and cleared the error, so a retry can "succeed" without the data ever reaching the disk
/// (PostgreSQL's fsyncgate, 2018). The only safe way on is to reopen the log, which recovers from what is
/// actually on disk.
public final class WriteAheadLog: Sendable {
    public static let defaultSegmentBytes = 64 << 20

    public let directory: String
    public let fsyncPolicy: FsyncPolicy
    /// What opening the log found and cut (torn tail, repair).
    public let recovery: RecoveryReport
    private let core: Core

    /// Opens (recovering) or creates the log in `directory`, positioned after the last valid record.
    ///
    /// - Parameters:
    ///   - segmentBytes: a segment rolls once the next block would take it past this size.
    ///   - repair: drop everything from the first corrupt block on instead of throwing (see ``LogReader/recover(repair:)``),
    ///     and go on without segments the manifest lists but that are gone (reported in the recovery report).
    ///   - startingSequence: the lowest sequence number the next record may get: one past what the newest
    ///     snapshot covers. A new log starts there; a log that ends below it (a torn tail or a repair under a
    ///     snapshot) continues from it in a fresh segment, and its older segments, which the snapshot covers, are
    ///     removed. New records are therefore always numbered above everything a snapshot covers.
    ///   - requireManifest: the log is known to have been created with a manifest (`wal.manifest`); its absence
    ///     is then data loss (`.missing`) unless `repair` is set.
    ///   - metrics: appends, bytes, fsyncs and their latency, group-commit batch sizes (nil: none).
    public init(
        directory: String, fileSystem: any StorageFileSystem = PosixFileSystem(), fsync: FsyncPolicy = .always,
        segmentBytes: Int = WriteAheadLog.defaultSegmentBytes, repair: Bool = false, startingSequence: UInt64 = 1,
        requireManifest: Bool = false, metrics: LogMetrics? = nil
    ) throws(StorageError) {
        guard segmentBytes >= SegmentFormat.headerSize + SegmentFormat.frameOverhead else {
            throw StorageError(code: .invalidArgument, message: "segmentBytes \(segmentBytes) is too small")
        }
        guard startingSequence >= 1, startingSequence < UInt64(1) << 62 else {
            throw StorageError(code: .invalidArgument, message: "sequence numbers start at 1 or later")
        }
        if case .interval(let ms) = fsync, ms <= 0 {
            throw StorageError(code: .invalidArgument, message: "fsync interval must be positive")
        }
        try fileSystem.createDirectoryDurably(directory)
        let reader = LogReader(directory: directory, fileSystem: fileSystem)
        let missing = try Self.checkManifest(
            directory: directory, fileSystem: fileSystem, reader: reader, repair: repair, required: requireManifest)
        var report = try reader.recover(repair: repair)
        report.missingSegments = missing
        let writer: SegmentWriter
        var segments: [SegmentWriter.Segment] = []
        for name in report.segments {
            guard let number = SegmentFormat.segmentNumber(fileName: name) else { continue }
            let prefix = try fileSystem.readPrefix(storagePath(directory, name), count: SegmentFormat.headerSize)
            guard let header = SegmentFormat.decodeHeader(prefix).header else {
                throw StorageError.corruption("segment header changed during open", path: name, offset: 0)
            }
            segments.append(.init(number: number, firstSequence: header.firstSequence, name: name))
        }
        let next: UInt64
        if let last = segments.last, report.nextSequence >= startingSequence {
            next = report.nextSequence
            writer = try SegmentWriter.reopen(
                directory: directory, fileSystem: fileSystem, segmentBytes: segmentBytes, segment: last)
        } else {
            // A new log, or one that ends below what the snapshot covers: everything it holds is covered, so it
            // continues in a fresh segment at `startingSequence` and the covered segments go (the manifest is
            // rewritten first, so a crash in between leaves only unlisted old files, which the next open removes).
            next = startingSequence
            writer = try SegmentWriter.create(
                directory: directory, fileSystem: fileSystem, segmentBytes: segmentBytes,
                number: report.nextSegmentNumber, firstSequence: next)
            try LogManifest(segments: [Self.entry(writer.segment)]).write(directory: directory, fileSystem: fileSystem)
            for segment in segments {
                try fileSystem.remove(storagePath(directory, segment.name))
                report.obsoleteSegments.append(segment.name)
            }
            if !segments.isEmpty { try fileSystem.fsyncDirectory(directory) }
            segments = [writer.segment]
            report.segments = [writer.segment.name]
            report.firstSequence = next
            report.nextSequence = next
        }
        try LogManifest(segments: segments.map(Self.entry)).write(directory: directory, fileSystem: fileSystem)
        self.directory = directory
        self.fsyncPolicy = fsync
        self.recovery = report
        self.core = Core(
            fileSystem: fileSystem, directory: directory, policy: fsync, nextSequence: next, segments: segments,
            metrics: metrics)
        try core.start(writer)
    }

    static func entry(_ segment: SegmentWriter.Segment) -> LogManifest.Entry {
        LogManifest.Entry(number: segment.number, firstSequence: segment.firstSequence)
    }

    /// Compares the segment files with the manifest. Listed segments that are gone are data loss: `.missing`
    /// (or, with `repair`, returned so the report says what was given up). Unlisted segments older than the
    /// first listed one are leftovers of an interrupted removal and are removed.
    private static func checkManifest(
        directory: String, fileSystem: any StorageFileSystem, reader: LogReader, repair: Bool, required: Bool
    ) throws(StorageError) -> [String] {
        let manifest: LogManifest?
        do {
            manifest = try LogManifest.read(directory: directory, fileSystem: fileSystem)
        } catch where repair {
            return ["\(LogManifest.fileName) (unreadable: \(error.message))"]
        }
        guard let manifest else {
            if required {
                let path = storagePath(directory, LogManifest.fileName)
                if repair { return [path] }
                throw StorageError(
                    code: .missing,
                    message: "\(path) is missing: the log's list of segments is gone, so it cannot be told whether acknowledged records are (start with repair to go on with what is there)",
                    path: path)
            }
            return []
        }
        let files = try reader.segments()
        let present = Set(files.map(\.number))
        let missing = manifest.segments.filter { !present.contains($0.number) }.map { storagePath(directory, $0.fileName) }
        if !missing.isEmpty, !repair {
            throw StorageError(
                code: .missing,
                message: "segments listed in \(LogManifest.fileName) are missing: \(missing.joined(separator: ", ")); the acknowledged records in them are gone (start with repair to go on without them)",
                path: missing[0])
        }
        if let first = manifest.segments.first?.number {
            var removed = false
            for file in files where file.number < first {
                try fileSystem.remove(file.path)
                removed = true
            }
            if removed { try fileSystem.fsyncDirectory(directory) }
        }
        return missing
    }

    deinit {
        try? close()
    }

    // MARK: Appending

    /// Queues one record and returns its sequence number. Never waits for I/O.
    public func append(_ record: [UInt8]) throws(StorageError) -> UInt64 {
        try append(contentsOf: [record]).lowerBound
    }

    /// Queues records with consecutive sequence numbers (no other append interleaves) and returns the range.
    public func append(contentsOf records: [[UInt8]]) throws(StorageError) -> ClosedRange<UInt64> {
        guard !records.isEmpty else {
            throw StorageError(code: .invalidArgument, message: "append(contentsOf:) needs at least one record")
        }
        for record in records where record.count > SegmentFormat.maxRecordBytes {
            throw StorageError(
                code: .invalidArgument,
                message: "record of \(record.count) bytes exceeds the limit of \(SegmentFormat.maxRecordBytes)")
        }
        return try core.enqueue(records)
    }

    /// Returns once record `sequence` is durable under the log's ``FsyncPolicy``; throws the log's fatal error if
    /// it failed first. Not cancellable: it resolves within one flush either way.
    public func waitDurable(_ sequence: UInt64) async throws(StorageError) {
        try await core.waitDurable(sequence, synced: false)
    }

    /// The highest sequence number durable under the policy (everything at or below it is).
    public var durableSequence: UInt64 { core.state.withLock { $0.durable(core.policy) } }
    /// The highest sequence number known to be fsynced.
    public var syncedSequence: UInt64 { core.state.withLock { $0.synced } }
    /// The sequence number the next appended record gets.
    public var nextSequence: UInt64 { core.state.withLock { $0.nextSequence } }
    /// The fatal error, once a write or fsync has failed.
    public var failure: StorageError? { core.state.withLock { $0.failure } }
    /// The live segment file names, oldest first.
    public var segmentFiles: [String] { core.state.withLock { $0.segments.map(\.name) } }

    /// Flushes and fsyncs everything queued (whatever the policy), stops the flusher and closes the segment.
    /// Later appends fail with `.closed`. Throws the log's fatal error if there was one.
    public func close() throws(StorageError) {
        try core.shutdown()
    }

    /// Removes whole segments whose records all have sequence numbers `<= sequence` (call after a snapshot that
    /// covers them). The active segment is never removed, so the next sequence number survives a reopen.
    /// Returns the removed file names.
    @discardableResult
    public func removeSegments(coveredUpTo sequence: UInt64) throws(StorageError) -> [String] {
        // The manifest is rewritten (without the victims) before any file goes: a crash in between leaves
        // unlisted old segments, which the next open removes, never a listed segment that is missing.
        let victims: [SegmentWriter.Segment] = try core.withManifest { () throws(StorageError) -> [SegmentWriter.Segment] in
            let (victims, kept): ([SegmentWriter.Segment], [SegmentWriter.Segment]) = core.state.withLock { s in
                var count = 0
                while count + 1 < s.segments.count {
                    let nextFirst = s.segments[count + 1].firstSequence
                    guard nextFirst == 0 || nextFirst - 1 <= sequence else { break }
                    count += 1
                }
                let removed = Array(s.segments.prefix(count))
                s.segments.removeFirst(count)
                return (removed, s.segments)
            }
            if !victims.isEmpty {
                try LogManifest(segments: kept.map(Self.entry)).write(directory: directory, fileSystem: core.fileSystem)
            }
            return victims
        }
        guard !victims.isEmpty else { return [] }
        for victim in victims { try core.fileSystem.remove(storagePath(directory, victim.name)) }
        try core.fileSystem.fsyncDirectory(directory)
        return victims.map(\.name)
    }

    /// Returns once record `sequence` is fsynced, whatever the policy (under `.interval` and `.never` this asks
    /// the flusher for an fsync now). What must not happen before its cause is on disk, such as money leaving
    /// through a payment gateway, waits on this rather than on ``waitDurable(_:)``.
    public func waitSynced(_ sequence: UInt64) async throws(StorageError) {
        try await core.waitDurable(sequence, synced: true)
    }

    /// Stops the log the way a killed process would: the flusher ends without writing what is still queued, the
    /// segment is closed, and every waiter fails. What was already written stays as the OS has it. For crash
    /// tests and simulations that reopen the directory in the same process.
    public func abandon() {
        core.abandon()
    }
}

// MARK: - Internals

/// A POSIX semaphore the flusher sleeps on. `@unchecked Sendable`: `sem_t` is made for use across threads and
/// lives at a fixed heap address for the object's lifetime.
private final class FlushSignal: @unchecked Sendable {
    private let semaphore: UnsafeMutablePointer<sem_t>

    init() {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func post() { sem_post(semaphore) }

    /// Waits for a post (or a signal interrupting the wait; callers re-check their state anyway).
    func wait() { _ = sem_wait(semaphore) }

    /// Waits for a post or until `nanoseconds` have passed.
    func wait(nanoseconds: Int64) {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let total = Int64(deadline.tv_nsec) + nanoseconds
        deadline.tv_sec += Int(total / 1_000_000_000)
        deadline.tv_nsec = Int(total % 1_000_000_000)
        _ = sem_timedwait(semaphore, &deadline)
    }
}

private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

private struct Waiter: Sendable {
    let sequence: UInt64
    /// Waits for the fsync, not only the policy's durability.
    let synced: Bool
    let continuation: CheckedContinuation<Result<Void, StorageError>, Never>
}

private struct LogState: Sendable {
    var nextSequence: UInt64
    var pending: [[UInt8]] = []
    var pendingFirst: UInt64
    var written: UInt64
    var synced: UInt64
    var waiters: [Waiter] = []
    var failure: StorageError?
    var closing = false
    /// Set by ``WriteAheadLog/abandon()``: the flusher stops without writing what is queued.
    var abandoned = false
    /// A waiter needs an fsync the policy would not have done yet.
    var syncRequested = false
    var signaled = false
    var thread: pthread_t?
    var segments: [SegmentWriter.Segment]

    func durable(_ policy: FsyncPolicy) -> UInt64 {
        policy == .always ? synced : written
    }

    /// Removes and returns the waiters at or below the durable sequence (the synced one for those that ask).
    mutating func takeReady(_ policy: FsyncPolicy) -> [Waiter] {
        let limit = durable(policy)
        let syncedLimit = synced
        func ready(_ waiter: Waiter) -> Bool { waiter.sequence <= (waiter.synced ? syncedLimit : limit) }
        guard waiters.contains(where: ready) else { return [] }
        var ready: [Waiter] = []
        waiters.removeAll { waiter in
            if waiter.sequence <= (waiter.synced ? syncedLimit : limit) {
                ready.append(waiter)
                return true
            }
            return false
        }
        return ready
    }
}

private final class Core: Sendable {
    let fileSystem: any StorageFileSystem
    let directory: String
    let policy: FsyncPolicy
    let state: Mutex<LogState>
    let signal = FlushSignal()
    let metrics: LogMetrics?
    /// Serialises manifest rewrites (the flusher on a roll, a snapshot's segment removal).
    private let manifestLock = Mutex<Void>(())

    init(
        fileSystem: any StorageFileSystem, directory: String, policy: FsyncPolicy, nextSequence: UInt64,
        segments: [SegmentWriter.Segment], metrics: LogMetrics?
    ) {
        self.metrics = metrics
        self.fileSystem = fileSystem
        self.directory = directory
        self.policy = policy
        state = Mutex(
            LogState(
                nextSequence: nextSequence, pendingFirst: nextSequence, written: nextSequence - 1,
                synced: nextSequence - 1, segments: segments))
    }

    func start(_ writer: SegmentWriter) throws(StorageError) {
        let body = ThreadBody { [self] in self.flushLoop(writer) }
        let context = Unmanaged.passRetained(body).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue().run()
                return nil
            }, context)
        guard rc == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            var w = writer
            try? w.close()
            throw StorageError.system("start WAL flusher thread", path: nil, errno: rc)
        }
        state.withLock { $0.thread = thread }
    }

    func enqueue(_ records: [[UInt8]]) throws(StorageError) -> ClosedRange<UInt64> {
        let (result, post): (Result<ClosedRange<UInt64>, StorageError>, Bool) = state.withLock { s in
            if let failure = s.failure { return (.failure(failure), false) }
            if s.closing { return (.failure(StorageError(code: .closed, message: "the log is closed")), false) }
            if s.pending.isEmpty { s.pendingFirst = s.nextSequence }
            s.pending.append(contentsOf: records)
            let first = s.nextSequence
            s.nextSequence += UInt64(records.count)
            let post = !s.signaled
            s.signaled = true
            return (.success(first...(s.nextSequence - 1)), post)
        }
        if post { signal.post() }
        return try result.get()
    }

    /// Runs `body` holding the manifest lock.
    func withManifest<T: Sendable>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        let result: Result<T, StorageError> = manifestLock.withLock { _ -> Result<T, StorageError> in
            do throws(StorageError) {
                return .success(try body())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Nil: park. Otherwise resolve now.
    private func immediate(_ s: LogState, _ sequence: UInt64, synced: Bool) -> Result<Void, StorageError>? {
        if sequence <= (synced ? s.synced : s.durable(policy)) { return .success(()) }
        if let failure = s.failure { return .failure(failure) }
        if sequence >= s.nextSequence {
            return .failure(
                StorageError(code: .invalidArgument, message: "sequence \(sequence) has not been appended"))
        }
        return nil
    }

    func waitDurable(_ sequence: UInt64, synced: Bool) async throws(StorageError) {
        if let now = state.withLock({ immediate($0, sequence, synced: synced) }) { return try now.get() }
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Void, StorageError>, Never>) in
            let (now, post): (Result<Void, StorageError>?, Bool) = state.withLock { s in
                if let now = immediate(s, sequence, synced: synced) { return (now, false) }
                s.waiters.append(Waiter(sequence: sequence, synced: synced, continuation: continuation))
                guard synced, policy != .always, !s.syncRequested else { return (nil, false) }
                // Under .interval/.never nothing would fsync soon: ask the flusher for one.
                s.syncRequested = true
                let post = !s.signaled
                s.signaled = true
                return (nil, post)
            }
            if post { signal.post() }
            if let now { continuation.resume(returning: now) }
        }
        try result.get()
    }

    func abandon() {
        stopFlusher(abandoning: true)
        fail(StorageError(code: .closed, message: "the log was abandoned (simulated crash)"))
    }

    func shutdown() throws(StorageError) {
        stopFlusher(abandoning: false)
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// Tells the flusher to finish (flushing what is queued, or, abandoning, writing nothing more) and joins it.
    private func stopFlusher(abandoning: Bool) {
        let thread: pthread_t? = state.withLock { s in
            if abandoning { s.abandoned = true }
            s.closing = true
            defer { s.thread = nil }
            return s.thread
        }
        if let thread {
            signal.post()
            pthread_join(thread, nil)
        }
    }

    // MARK: Flusher thread

    private func flushLoop(_ initial: SegmentWriter) {
        var writer = initial
        var unsyncedSince: ContinuousClock.Instant?
        while true {
            if case .interval(let ms) = policy, let since = unsyncedSince {
                let remaining = since.advanced(by: .milliseconds(ms)) - ContinuousClock.now
                if remaining > .zero {
                    let (seconds, attoseconds) = remaining.components
                    signal.wait(nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
                }
            } else {
                signal.wait()
            }
            let (batch, first, closing, abandoned, syncRequested) = state.withLock { s in
                s.signaled = false
                let batch = s.pending
                s.pending = []
                let first = s.pendingFirst
                s.pendingFirst = s.nextSequence
                let syncRequested = s.syncRequested
                s.syncRequested = false
                return (batch, first, s.closing, s.abandoned, syncRequested)
            }
            if abandoned {
                // A killed process writes nothing more; the OS keeps what it already has.
                try? writer.close()
                return
            }
            do {
                if !batch.isEmpty {
                    let created = try writer.append(batch, firstSequence: first)
                    metrics?.appended(batch)
                    if !created.isEmpty {
                        // The new segment is listed before any record in it is acknowledged.
                        let all: [SegmentWriter.Segment] = state.withLock { s in
                            s.segments.append(contentsOf: created)
                            return s.segments
                        }
                        try withManifest { () throws(StorageError) in
                            try LogManifest(segments: all.map(WriteAheadLog.entry))
                                .write(directory: directory, fileSystem: fileSystem)
                        }
                    }
                    let last = first + UInt64(batch.count) - 1
                    if policy == .always {
                        try sync(&writer)
                        complete(written: last, synced: last)
                    } else {
                        if unsyncedSince == nil { unsyncedSince = .now }
                        complete(written: last, synced: nil)
                    }
                }
                if case .interval(let ms) = policy, let since = unsyncedSince,
                    ContinuousClock.now >= since.advanced(by: .milliseconds(ms))
                {
                    try syncAll(&writer)
                    unsyncedSince = nil
                } else if syncRequested, policy != .always {
                    try syncAll(&writer)
                    unsyncedSince = nil
                }
                if closing {
                    try syncAll(&writer)
                    try writer.close()
                    return
                }
            } catch {
                fail(error)
                try? writer.close()
                return
            }
        }
    }

    /// One fsync of the segment being written, timed for the metrics.
    private func sync(_ writer: inout SegmentWriter) throws(StorageError) {
        guard let metrics else { return try writer.sync() }
        let start = ContinuousClock.now
        try writer.sync()
        metrics.synced(after: ContinuousClock.now - start)
    }

    private func syncAll(_ writer: inout SegmentWriter) throws(StorageError) {
        try sync(&writer)
        let ready: [Waiter] = state.withLock { s in
            s.synced = s.written
            return s.takeReady(policy)
        }
        for waiter in ready { waiter.continuation.resume(returning: .success(())) }
    }

    private func complete(written: UInt64, synced: UInt64?) {
        let ready: [Waiter] = state.withLock { s in
            s.written = written
            if let synced { s.synced = synced }
            return s.takeReady(policy)
        }
        for waiter in ready { waiter.continuation.resume(returning: .success(())) }
    }

    private func fail(_ error: StorageError) {
        let failed: [Waiter] = state.withLock { s in
            if s.failure == nil { s.failure = error }
            s.pending = []
            let all = s.waiters
            s.waiters = []
            return all
        }
        let failure = state.withLock { $0.failure } ?? error
        for waiter in failed { waiter.continuation.resume(returning: .failure(failure)) }
    }
}
