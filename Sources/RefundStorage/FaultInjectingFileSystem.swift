import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Wraps another file system for tests: counts writes and fsyncs, can fail the Nth write or fsync with a chosen
/// errno (EIO, ENOSPC, ...), can make a failing write land part of its bytes first (a torn write), and can slow
/// fsyncs down so that group commit becomes observable.
public final class FaultInjectingFileSystem: StorageFileSystem {
    public struct Counters: Sendable, Equatable {
        /// Calls to `write`, including failed ones.
        public var writes = 0
        /// Calls to `fsync` on files, including failed ones.
        public var fsyncs = 0
        /// Calls to `fsyncDirectory`.
        public var directoryFsyncs = 0
        public var bytesWritten = 0
    }

    private struct Fault {
        var onCall: Int
        var errno: Int32
        var partialBytes: Int
    }

    private struct State {
        var counters = Counters()
        var writeFault: Fault?
        var fsyncFault: Fault?
        var fsyncDelayMicroseconds: UInt32 = 0
    }

    public let base: any StorageFileSystem
    private let state = Mutex(State())

    public init(wrapping base: any StorageFileSystem = PosixFileSystem()) {
        self.base = base
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// Makes the write after the next `afterSuccessfulWrites` writes fail with `errno`, after letting its first
    /// `partialBytes` bytes through (0: nothing lands). Only that one call fails.
    public func failWrite(afterSuccessfulWrites count: Int = 0, errno: Int32 = EIO, partialBytes: Int = 0) {
        state.withLock {
            $0.writeFault = Fault(onCall: $0.counters.writes + count + 1, errno: errno, partialBytes: partialBytes)
        }
    }

    /// Makes the file fsync after the next `afterSuccessfulFsyncs` file fsyncs fail with `errno`.
    public func failFsync(afterSuccessfulFsyncs count: Int = 0, errno: Int32 = EIO) {
        state.withLock {
            $0.fsyncFault = Fault(onCall: $0.counters.fsyncs + count + 1, errno: errno, partialBytes: 0)
        }
    }

    /// Sleeps this long in every file fsync (before doing it), like a slow disk.
    public func setFsyncDelay(microseconds: UInt32) {
        state.withLock { $0.fsyncDelayMicroseconds = microseconds }
    }

    public func write(_ handle: StorageFileHandle, _ bytes: [UInt8]) throws(StorageError) {
        let fault: Fault? = state.withLock { s in
            s.counters.writes += 1
            if let f = s.writeFault, f.onCall == s.counters.writes {
                s.writeFault = nil
                return f
            }
            s.counters.bytesWritten += bytes.count
            return nil
        }
        if let fault {
            let landed = Swift.min(Swift.max(fault.partialBytes, 0), bytes.count)
            if landed > 0 { try base.write(handle, Array(bytes[0..<landed])) }
            throw StorageError.system("write", path: handle.path, errno: fault.errno)
        }
        try base.write(handle, bytes)
    }

    public func fsync(_ handle: StorageFileHandle) throws(StorageError) {
        let (fault, delay): (Fault?, UInt32) = state.withLock { s in
            s.counters.fsyncs += 1
            if let f = s.fsyncFault, f.onCall == s.counters.fsyncs {
                s.fsyncFault = nil
                return (f, s.fsyncDelayMicroseconds)
            }
            return (nil, s.fsyncDelayMicroseconds)
        }
        if delay > 0 { usleep(delay) }
        if let fault { throw StorageError.system("fsync", path: handle.path, errno: fault.errno) }
        try base.fsync(handle)
    }

    public func fsyncDirectory(_ path: String) throws(StorageError) {
        state.withLock { $0.counters.directoryFsyncs += 1 }
        try base.fsyncDirectory(path)
    }

    public func createForAppend(_ path: String) throws(StorageError) -> StorageFileHandle {
        try base.createForAppend(path)
    }

    public func openForAppend(_ path: String) throws(StorageError) -> StorageFileHandle {
        try base.openForAppend(path)
    }

    public func close(_ handle: StorageFileHandle) throws(StorageError) { try base.close(handle) }
    public func readFile(_ path: String) throws(StorageError) -> [UInt8] { try base.readFile(path) }
    public func readPrefix(_ path: String, count: Int) throws(StorageError) -> [UInt8] {
        try base.readPrefix(path, count: count)
    }
    public func listDirectory(_ path: String) throws(StorageError) -> [String] { try base.listDirectory(path) }
    public func createDirectory(_ path: String) throws(StorageError) { try base.createDirectory(path) }
    public func rename(from: String, to: String) throws(StorageError) { try base.rename(from: from, to: to) }
    public func remove(_ path: String) throws(StorageError) { try base.remove(path) }
    public func truncate(_ path: String, toSize size: Int64) throws(StorageError) {
        try base.truncate(path, toSize: size)
    }
    public func fileSize(_ path: String) throws(StorageError) -> Int64 { try base.fileSize(path) }
    public func fileExists(_ path: String) -> Bool { base.fileExists(path) }
    public func lockExclusive(_ path: String, owner: String) throws(StorageError) -> StorageFileHandle {
        try base.lockExclusive(path, owner: owner)
    }
    public func unlock(_ handle: StorageFileHandle) { base.unlock(handle) }
}
