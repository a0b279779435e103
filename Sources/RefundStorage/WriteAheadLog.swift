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
    ///   - repair: drop everything from the first corrupt block on instead of throwing (see ``LogReader/recover(repair:)``).
    ///   - startingSequence: the first sequence number of a log that has no segment yet (e.g. one after the
    ///     snapshot that a new log continues from). Ignored when segments exist.
    public init(
        directory: String, fileSystem: any StorageFileSystem = PosixFileSystem(), fsync: FsyncPolicy = .always,
        segmentBytes: Int = WriteAheadLog.defaultSegmentBytes, repair: Bool = false, startingSequence: UInt64 = 1
    ) throws(StorageError) {
        guard segmentBytes >= SegmentFormat.headerSize + SegmentFormat.frameOverhead else {
            throw StorageError(code: .invalidArgument, message: "segmentBytes \(segmentBytes) is too small")
        }
        guard startingSequence >= 1 else {
            throw StorageError(code: .invalidArgument, message: "sequence numbers start at 1 or later")
        }
        if case .interval(let ms) = fsync, ms <= 0 {
            throw StorageError(code: .invalidArgument, message: "fsync interval must be positive")
        }
        try fileSystem.createDirectory(directory)
        let reader = LogReader(directory: directory, fileSystem: fileSystem)
        let report = try reader.recover(repair: repair)
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
        if let last = segments.last {
            next = report.nextSequence
            writer = try SegmentWriter.reopen(
                directory: directory, fileSystem: fileSystem, segmentBytes: segmentBytes, segment: last)
        } else {
            next = report.nextSequence > 0 ? report.nextSequence : startingSequence
            writer = try SegmentWriter.create(
                directory: directory, fileSystem: fileSystem, segmentBytes: segmentBytes,
                number: report.nextSegmentNumber, firstSequence: next)
            segments = [writer.segment]
        }
        self.directory = directory
        self.fsyncPolicy = fsync
        self.recovery = report
        self.core = Core(fileSystem: fileSystem, policy: fsync, nextSequence: next, segments: segments)
        try core.start(writer)
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
        try await core.waitDurable(sequence)
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
        let victims: [SegmentWriter.Segment] = core.state.withLock { s in
            var count = 0
            while count + 1 < s.segments.count {
                let nextFirst = s.segments[count + 1].firstSequence
                guard nextFirst == 0 || nextFirst - 1 <= sequence else { break }
                count += 1
            }
            let removed = Array(s.segments.prefix(count))
            s.segments.removeFirst(count)
            return removed
        }
        guard !victims.isEmpty else { return [] }
        for victim in victims { try core.fileSystem.remove(storagePath(directory, victim.name)) }
        try core.fileSystem.fsyncDirectory(directory)
        return victims.map(\.name)
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
    var signaled = false
    var thread: pthread_t?
    var segments: [SegmentWriter.Segment]

    func durable(_ policy: FsyncPolicy) -> UInt64 {
        policy == .always ? synced : written
    }

    /// Removes and returns the waiters at or below the durable sequence.
    mutating func takeReady(_ policy: FsyncPolicy) -> [Waiter] {
        let limit = durable(policy)
        guard waiters.contains(where: { $0.sequence <= limit }) else { return [] }
        var ready: [Waiter] = []
        waiters.removeAll { waiter in
            if waiter.sequence <= limit {
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
    let policy: FsyncPolicy
    let state: Mutex<LogState>
    let signal = FlushSignal()

    init(
        fileSystem: any StorageFileSystem, policy: FsyncPolicy, nextSequence: UInt64,
        segments: [SegmentWriter.Segment]
    ) {
        self.fileSystem = fileSystem
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

    /// Nil: park. Otherwise resolve now.
    private func immediate(_ s: LogState, _ sequence: UInt64) -> Result<Void, StorageError>? {
        if sequence <= s.durable(policy) { return .success(()) }
        if let failure = s.failure { return .failure(failure) }
        if sequence >= s.nextSequence {
            return .failure(
                StorageError(code: .invalidArgument, message: "sequence \(sequence) has not been appended"))
        }
        return nil
    }

    func waitDurable(_ sequence: UInt64) async throws(StorageError) {
        if let now = state.withLock({ immediate($0, sequence) }) { return try now.get() }
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Void, StorageError>, Never>) in
            let now: Result<Void, StorageError>? = state.withLock { s in
                if let now = immediate(s, sequence) { return now }
                s.waiters.append(Waiter(sequence: sequence, continuation: continuation))
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
        try result.get()
    }

    func shutdown() throws(StorageError) {
        let thread: pthread_t? = state.withLock { s in
            s.closing = true
            defer { s.thread = nil }
            return s.thread
        }
        if let thread {
            signal.post()
            pthread_join(thread, nil)
        }
        if let failure = state.withLock({ $0.failure }) { throw failure }
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
            let (batch, first, closing) = state.withLock { s in
                s.signaled = false
                let batch = s.pending
                s.pending = []
                let first = s.pendingFirst
                s.pendingFirst = s.nextSequence
                return (batch, first, s.closing)
            }
            do {
                if !batch.isEmpty {
                    let created = try writer.append(batch, firstSequence: first)
                    if !created.isEmpty { state.withLock { $0.segments.append(contentsOf: created) } }
                    let last = first + UInt64(batch.count) - 1
                    if policy == .always {
                        try writer.sync()
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

    private func syncAll(_ writer: inout SegmentWriter) throws(StorageError) {
        try writer.sync()
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
