#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An open file: its descriptor and the path it was opened with (kept for error messages and fault injection).
public struct StorageFileHandle: Sendable, Hashable {
    public let descriptor: Int32
    public let path: String

    public init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }
}

/// The file seam of the storage layer: every byte the WAL and the snapshot store read or write goes through it, so
/// tests can inject failures (``FaultInjectingFileSystem``) and count fsyncs.
public protocol StorageFileSystem: Sendable {
    /// Creates `path`, failing if it exists, and opens it for appending.
    func createForAppend(_ path: String) throws(StorageError) -> StorageFileHandle
    /// Opens an existing file for appending (every write goes to its end).
    func openForAppend(_ path: String) throws(StorageError) -> StorageFileHandle
    /// Writes all of `bytes` (looping over short writes).
    func write(_ handle: StorageFileHandle, _ bytes: [UInt8]) throws(StorageError)
    /// Flushes the file's data and metadata to stable storage.
    func fsync(_ handle: StorageFileHandle) throws(StorageError)
    func close(_ handle: StorageFileHandle) throws(StorageError)
    /// Flushes a directory, making creations, renames and removals in it durable.
    func fsyncDirectory(_ path: String) throws(StorageError)
    func readFile(_ path: String) throws(StorageError) -> [UInt8]
    /// The first `count` bytes of a file (fewer when the file is shorter).
    func readPrefix(_ path: String, count: Int) throws(StorageError) -> [UInt8]
    /// The names (not paths) in a directory, without "." and "..", in no particular order.
    func listDirectory(_ path: String) throws(StorageError) -> [String]
    /// Creates a directory and its missing parents; an existing directory is fine.
    func createDirectory(_ path: String) throws(StorageError)
    /// Atomically replaces `to` with `from`.
    func rename(from: String, to: String) throws(StorageError)
    func remove(_ path: String) throws(StorageError)
    func truncate(_ path: String, toSize size: Int64) throws(StorageError)
    func fileSize(_ path: String) throws(StorageError) -> Int64
    func fileExists(_ path: String) -> Bool
    /// Takes an exclusive lock on `path` (creating it) for as long as the handle is open, and writes `owner` into
    /// it (who holds it, for the error a second opener gets). Fails with `.locked`, naming the holder, when anyone
    /// else holds it: another process, or another handle in this one.
    func lockExclusive(_ path: String, owner: String) throws(StorageError) -> StorageFileHandle
    /// Releases a lock taken with ``lockExclusive(_:owner:)`` and closes its handle.
    func unlock(_ handle: StorageFileHandle)
}

extension StorageFileSystem {
    /// Replaces the small file `path` crash-atomically: a stale `<path>.tmp` is removed, the bytes go to a new
    /// `<path>.tmp`, which is fsynced, closed, renamed over `path`, and the directory is fsynced. A crash at any
    /// point leaves the old file or the new one, never a mix. (Manifests, `engine.meta`.)
    public func replaceAtomically(_ path: String, with bytes: [UInt8]) throws(StorageError) {
        let temporary = path + ".tmp"
        if fileExists(temporary) { try remove(temporary) }
        let handle = try createForAppend(temporary)
        do {
            try write(handle, bytes)
            try fsync(handle)
        } catch {
            try? close(handle)  // the write or fsync error is what matters; it is thrown below
            throw error
        }
        try close(handle)
        try rename(from: temporary, to: path)
        try fsyncDirectory(parentDirectory(of: path))
    }

    /// Creates a directory (and missing parents) and, when it was new, fsyncs its parent so the new entry
    /// survives a power loss.
    public func createDirectoryDurably(_ path: String) throws(StorageError) {
        if fileExists(path) { return }
        // Every directory this creates is fsynced into its parent, top down.
        var missing: [String] = []
        var current = path
        while !fileExists(current), current != "/", current != ".", !current.isEmpty {
            missing.append(current)
            current = parentDirectory(of: current)
        }
        try createDirectory(path)
        for directory in missing.reversed() { try fsyncDirectory(parentDirectory(of: directory)) }
    }
}

/// This process's id (named in the lock file of a data directory).
public func currentProcessID() -> Int32 { getpid() }

/// The directory holding `path` ("." for a bare name).
public func parentDirectory(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "." }
    return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
}

/// Joins a directory and a name with exactly one "/".
@inlinable
public func storagePath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// The real file system through POSIX calls. Interrupted calls (`EINTR`) are retried; every other failure
/// throws a ``StorageError`` carrying the errno and its text.
public struct PosixFileSystem: StorageFileSystem {
    public init() {}

    public func createForAppend(_ path: String) throws(StorageError) -> StorageFileHandle {
        try openFile(path, flags: O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
    }

    public func openForAppend(_ path: String) throws(StorageError) -> StorageFileHandle {
        try openFile(path, flags: O_WRONLY | O_APPEND | O_CLOEXEC, operation: "open")
    }

    private func openFile(_ path: String, flags: Int32, operation: String) throws(StorageError) -> StorageFileHandle {
        let fd = try retrying(operation, path) { open(path, flags, 0o644) }
        return StorageFileHandle(descriptor: fd, path: path)
    }

    public func write(_ handle: StorageFileHandle, _ bytes: [UInt8]) throws(StorageError) {
        try withBytes(bytes) { (buffer) throws(StorageError) in
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < buffer.count {
                let n = posixWrite(handle.descriptor, base + done, buffer.count - done)
                if n < 0 {
                    let e = errno
                    if e == EINTR { continue }
                    throw StorageError.system("write", path: handle.path, errno: e)
                }
                if n == 0 { throw StorageError.system("write", path: handle.path, errno: EIO) }
                done += n
            }
        }
    }

    public func fsync(_ handle: StorageFileHandle) throws(StorageError) {
        // Not retried on anything but EINTR: after a failed fsync the kernel may have dropped the dirty pages, so
        // a second fsync can "succeed" without the data ever reaching the disk.
        _ = try retrying("fsync", handle.path) { posixFsync(handle.descriptor) }
    }

    public func close(_ handle: StorageFileHandle) throws(StorageError) {
        // close(2) must not be retried on EINTR on Linux (the descriptor is already released).
        if posixClose(handle.descriptor) != 0, errno != EINTR {
            throw StorageError.system("close", path: handle.path, errno: errno)
        }
    }

    public func fsyncDirectory(_ path: String) throws(StorageError) {
        let fd = try retrying("open directory", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { _ = posixClose(fd) }
        _ = try retrying("fsync directory", path) { posixFsync(fd) }
    }

    public func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        let fd = try retrying("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { _ = posixClose(fd) }
        var info = stat()
        _ = try retrying("stat", path) { fstat(fd, &info) }
        var result = [UInt8]()
        result.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try withMutableBytes(&chunk) { (buffer) throws(StorageError) -> Int in
                try retryingCount("read", path) { read(fd, buffer.baseAddress, buffer.count) }
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    public func readPrefix(_ path: String, count: Int) throws(StorageError) -> [UInt8] {
        let fd = try retrying("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { _ = posixClose(fd) }
        var result = [UInt8](repeating: 0, count: Swift.max(count, 0))
        var filled = 0
        while filled < result.count {
            let n = try withMutableBytes(&result) { (buffer) throws(StorageError) -> Int in
                try retryingCount("read", path) {
                    read(fd, buffer.baseAddress.map { $0 + filled }, buffer.count - filled)
                }
            }
            if n == 0 { break }
            filled += n
        }
        result.removeLast(result.count - filled)
        return result
    }

    public func listDirectory(_ path: String) throws(StorageError) -> [String] {
        guard let dir = opendir(path) else { throw StorageError.system("opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func createDirectory(_ path: String) throws(StorageError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 {
                let e = errno
                if e != EEXIST { throw StorageError.system("mkdir", path: prefix, errno: e) }
            }
            prefix += "/"
        }
    }

    public func rename(from: String, to: String) throws(StorageError) {
        _ = try retrying("rename to \(to)", from) { posixRename(from, to) }
    }

    public func remove(_ path: String) throws(StorageError) {
        _ = try retrying("unlink", path) { unlink(path) }
    }

    public func truncate(_ path: String, toSize size: Int64) throws(StorageError) {
        _ = try retrying("truncate", path) { posixTruncate(path, off_t(size)) }
    }

    public func fileSize(_ path: String) throws(StorageError) -> Int64 {
        var info = stat()
        _ = try retrying("stat", path) { stat(path, &info) }
        return Int64(info.st_size)
    }

    public func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public func lockExclusive(_ path: String, owner: String) throws(StorageError) -> StorageFileHandle {
        let fd = try retrying("open lock file", path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            let holder = (try? readFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            _ = posixClose(fd)
            guard e == EWOULDBLOCK else { throw StorageError.system("flock", path: path, errno: e) }
            throw StorageError(
                code: .locked,
                message: "the data directory is in use (\(holder.isEmpty ? "holder unknown" : holder)); lock file \(path)",
                path: path)
        }
        let handle = StorageFileHandle(descriptor: fd, path: path)
        // Who holds it, for the next opener's error. Not a durability matter: the lock itself is the flock.
        if ftruncate(fd, 0) == 0 {
            let bytes = Array(owner.utf8)
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
        return handle
    }

    public func unlock(_ handle: StorageFileHandle) {
        _ = flock(handle.descriptor, LOCK_UN)
        _ = posixClose(handle.descriptor)
    }

    /// Runs a call that returns -1 and sets errno on failure, retrying while it is interrupted.
    private func retrying(_ operation: String, _ path: String, _ call: () -> Int32) throws(StorageError) -> Int32 {
        while true {
            let result = call()
            if result >= 0 { return result }
            let e = errno
            if e != EINTR { throw StorageError.system(operation, path: path, errno: e) }
        }
    }

    private func retryingCount(_ operation: String, _ path: String, _ call: () -> Int) throws(StorageError) -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            let e = errno
            if e != EINTR { throw StorageError.system(operation, path: path, errno: e) }
        }
    }
}

// File-scope wrappers: inside `PosixFileSystem` the unqualified names resolve to its own methods.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
private func posixFsync(_ fd: Int32) -> Int32 { fsync(fd) }
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
private func posixRename(_ from: String, _ to: String) -> Int32 { rename(from, to) }
private func posixTruncate(_ path: String, _ size: off_t) -> Int32 { truncate(path, size) }
