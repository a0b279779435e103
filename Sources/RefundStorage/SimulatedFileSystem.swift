import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An in-memory file system that knows what a crash keeps, for deterministic simulations of crashes, power
/// losses and disk faults (the seeded simulation in `Tests/RefundEngineTests/SimulationTests.swift` and
/// `tools/simulate.sh`).
///
/// Every file has two contents: what the page cache holds (`data`, what reads see) and what the disk holds
/// (`synced`, as of the file's last fsync). Every directory likewise has its current entries and the entries as
/// of its last fsync. Then:
///
/// - ``crash(after:)`` makes the process "die" at a chosen file-system call: that call and every later one fail
///   with EIO, and a `write` that is the fatal call lands only a seeded prefix of its bytes (a write cut part-way).
/// - ``restart(powerLoss:)`` brings the machine back. After a process crash (`kill -9`) the page cache survives:
///   every completed write is kept. After a power loss each file keeps its synced bytes plus a seeded prefix of
///   what it appended since (never bytes out of order), and each directory keeps its synced entries, or, at the
///   seed's choice, its current ones (the metadata journal may have committed them).
/// - ``flipBit(_:byteOffset:bit:)`` and ``delete(_:)`` damage the disk as a bad sector or an operator would.
///
/// Not a general file system: paths are plain strings split at "/", directories exist once created, and there are
/// no permissions. Thread-safe (one lock); the WAL's flusher threads and the engine call it concurrently.
public final class SimulatedFileSystem: StorageFileSystem {
    private struct Node {
        var data: [UInt8] = []
        var synced: [UInt8] = []
    }

    private struct Directory {
        var entries: [String: Int] = [:]
        var synced: [String: Int] = [:]
        /// Whether the directory itself survives a power loss (its parent was fsynced after it was made).
        var durable = false
    }

    private struct Open {
        var node: Int
        var path: String
    }

    private struct State {
        var nodes: [Int: Node] = [:]
        var directories: [String: Directory] = ["/": Directory(durable: true)]
        var handles: [Int32: Open] = [:]
        var locks: [String: Int32] = [:]
        var nextNode = 1
        var nextDescriptor: Int32 = 3
        var calls = 0
        var crashAt: Int?
        var crashed = false
        var failures: [(kind: FaultKind, errno: Int32)] = []
        var rng: UInt64
    }

    /// Which call a one-off injected failure hits.
    public enum FaultKind: Sendable { case write, fsync }

    private let state: Mutex<State>

    public init(seed: UInt64) {
        state = Mutex(State(rng: seed | 1))
    }

    // MARK: Control

    /// File-system calls made so far (every call counts, reads included).
    public var calls: Int { state.withLock { $0.calls } }
    public var hasCrashed: Bool { state.withLock { $0.crashed } }

    /// The process dies at call number `calls + count + 1`: that call and all later ones fail.
    public func crash(after count: Int) {
        state.withLock { $0.crashAt = $0.calls + count + 1 }
    }

    /// The process dies now: every later call fails.
    public func crashNow() {
        state.withLock { $0.crashed = true }
    }

    /// The next `kind` call fails with `errno` (the disk is full or failing); the process lives on.
    public func failNext(_ kind: FaultKind, errno: Int32) {
        state.withLock { $0.failures.append((kind, errno)) }
    }

    /// The machine comes back: open handles and locks are gone, calls work again. With `powerLoss`, what was
    /// not fsynced is lost as described in the type's documentation.
    public func restart(powerLoss: Bool) {
        state.withLock { s in
            s.crashed = false
            s.crashAt = nil
            s.failures = []
            s.handles = [:]
            s.locks = [:]
            guard powerLoss else { return }
            for path in s.directories.keys.sorted() {
                guard var directory = s.directories[path] else { continue }
                if !directory.durable {
                    s.directories[path] = nil
                    continue
                }
                if Self.random(&s.rng) % 4 != 0 { directory.entries = directory.synced }
                directory.synced = directory.entries
                s.directories[path] = directory
            }
            // Directories whose parent is gone go too.
            for path in s.directories.keys where path != "/" && s.directories[Self.split(path).directory] == nil {
                s.directories[path] = nil
            }
            var live = Set<Int>()
            for directory in s.directories.values { live.formUnion(directory.entries.values) }
            for id in Array(s.nodes.keys) {
                guard live.contains(id), var node = s.nodes[id] else {
                    s.nodes[id] = nil
                    continue
                }
                if node.data.count > node.synced.count, node.data.starts(with: node.synced) {
                    let extra = node.data.count - node.synced.count
                    let kept = Int(Self.random(&s.rng) % UInt64(extra + 1))
                    node.data = Array(node.data[0..<(node.synced.count + kept)])
                } else if node.data != node.synced {
                    node.data = Self.random(&s.rng) % 2 == 0 ? node.synced : node.data
                }
                node.synced = node.data
                s.nodes[id] = node
            }
        }
    }

    /// Flips one bit of a file, on disk and in the cache alike (a bad sector, a bit rot).
    public func flipBit(_ path: String, byteOffset: Int, bit: Int) {
        state.withLock { s in
            let (directory, name) = Self.split(path)
            guard let id = s.directories[directory]?.entries[name], var node = s.nodes[id], byteOffset < node.data.count
            else { return }
            node.data[byteOffset] ^= UInt8(1 << (bit & 7))
            if byteOffset < node.synced.count { node.synced[byteOffset] ^= UInt8(1 << (bit & 7)) }
            s.nodes[id] = node
        }
    }

    /// Removes a file for good (an operator's mistake).
    public func delete(_ path: String) {
        state.withLock { s in
            let (directory, name) = Self.split(path)
            s.directories[directory]?.entries[name] = nil
            s.directories[directory]?.synced[name] = nil
        }
    }

    /// Every file path, sorted (for picking a victim).
    public func allFiles() -> [String] {
        state.withLock { s in
            s.directories.flatMap { path, directory in directory.entries.keys.map { storagePath(path, $0) } }.sorted()
        }
    }

    /// A file's current size (0 when absent), without counting a call.
    public func size(_ path: String) -> Int {
        state.withLock { s in
            let (directory, name) = Self.split(path)
            guard let id = s.directories[directory]?.entries[name] else { return 0 }
            return s.nodes[id]?.data.count ?? 0
        }
    }

    // MARK: StorageFileSystem

    public func createForAppend(_ path: String) throws(StorageError) -> StorageFileHandle {
        try call("create", path) { s throws(StorageError) in
            let (directory, name) = Self.split(path)
            guard s.directories[directory] != nil else { throw Self.error("create", path, ENOENT) }
            guard s.directories[directory]?.entries[name] == nil else { throw Self.error("create", path, EEXIST) }
            let id = s.nextNode
            s.nextNode += 1
            s.nodes[id] = Node()
            s.directories[directory]?.entries[name] = id
            return Self.open(&s, node: id, path: path)
        }
    }

    public func openForAppend(_ path: String) throws(StorageError) -> StorageFileHandle {
        try call("open", path) { s throws(StorageError) in
            let id = try Self.node(s, path, "open")
            return Self.open(&s, node: id, path: path)
        }
    }

    public func write(_ handle: StorageFileHandle, _ bytes: [UInt8]) throws(StorageError) {
        let fatal: Bool = state.withLock { s in
            s.calls += 1
            if let at = s.crashAt, s.calls >= at, !s.crashed {
                // The fatal call: a write cut part-way lands a prefix.
                s.crashed = true
                if let open = s.handles[handle.descriptor], var node = s.nodes[open.node] {
                    let landed = Int(Self.random(&s.rng) % UInt64(bytes.count + 1))
                    node.data += bytes[0..<landed]
                    s.nodes[open.node] = node
                }
                return true
            }
            return false
        }
        if fatal { throw Self.error("write", handle.path, EIO) }
        try call("write", handle.path, counted: false) { s throws(StorageError) in
            if let index = s.failures.firstIndex(where: { $0.kind == .write }) {
                let failure = s.failures.remove(at: index)
                throw Self.error("write", handle.path, failure.errno)
            }
            guard let open = s.handles[handle.descriptor], var node = s.nodes[open.node] else {
                throw Self.error("write", handle.path, EBADF)
            }
            node.data += bytes
            s.nodes[open.node] = node
        }
    }

    public func fsync(_ handle: StorageFileHandle) throws(StorageError) {
        try call("fsync", handle.path) { s throws(StorageError) in
            if let index = s.failures.firstIndex(where: { $0.kind == .fsync }) {
                let failure = s.failures.remove(at: index)
                throw Self.error("fsync", handle.path, failure.errno)
            }
            guard let open = s.handles[handle.descriptor], var node = s.nodes[open.node] else {
                throw Self.error("fsync", handle.path, EBADF)
            }
            node.synced = node.data
            s.nodes[open.node] = node
        }
    }

    public func close(_ handle: StorageFileHandle) throws(StorageError) {
        try call("close", handle.path) { s throws(StorageError) in
            s.handles[handle.descriptor] = nil
        }
    }

    public func fsyncDirectory(_ path: String) throws(StorageError) {
        try call("fsync directory", path) { s throws(StorageError) in
            let key = Self.normalize(path)
            guard var directory = s.directories[key] else { throw Self.error("fsync directory", path, ENOENT) }
            directory.synced = directory.entries
            s.directories[key] = directory
            // Subdirectories named in it are now durable entries.
            for (child, _) in s.directories where Self.split(child).directory == key && child != key {
                s.directories[child]?.durable = true
            }
        }
    }

    public func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        try call("read", path) { s throws(StorageError) in
            let id = try Self.node(s, path, "open")
            return s.nodes[id]?.data ?? []
        }
    }

    public func readPrefix(_ path: String, count: Int) throws(StorageError) -> [UInt8] {
        try call("read", path) { s throws(StorageError) in
            let id = try Self.node(s, path, "open")
            return Array((s.nodes[id]?.data ?? []).prefix(max(count, 0)))
        }
    }

    public func listDirectory(_ path: String) throws(StorageError) -> [String] {
        try call("opendir", path) { s throws(StorageError) in
            let key = Self.normalize(path)
            guard let directory = s.directories[key] else { throw Self.error("opendir", path, ENOENT) }
            let subdirectories = s.directories.keys.filter { $0 != key && Self.split($0).directory == key }
                .map { Self.split($0).name }
            return Array(directory.entries.keys) + subdirectories
        }
    }

    public func createDirectory(_ path: String) throws(StorageError) {
        try call("mkdir", path) { s throws(StorageError) in
            var prefix = ""
            for component in Self.normalize(path).split(separator: "/") {
                prefix += "/" + component
                if s.directories[prefix] == nil { s.directories[prefix] = Directory() }
            }
        }
    }

    public func rename(from: String, to: String) throws(StorageError) {
        try call("rename to \(to)", from) { s throws(StorageError) in
            let id = try Self.node(s, from, "rename")
            let (fromDirectory, fromName) = Self.split(from)
            let (toDirectory, toName) = Self.split(to)
            guard s.directories[toDirectory] != nil else { throw Self.error("rename", to, ENOENT) }
            s.directories[fromDirectory]?.entries[fromName] = nil
            s.directories[toDirectory]?.entries[toName] = id
        }
    }

    public func remove(_ path: String) throws(StorageError) {
        try call("unlink", path) { s throws(StorageError) in
            _ = try Self.node(s, path, "unlink")
            let (directory, name) = Self.split(path)
            s.directories[directory]?.entries[name] = nil
        }
    }

    public func truncate(_ path: String, toSize size: Int64) throws(StorageError) {
        try call("truncate", path) { s throws(StorageError) in
            let id = try Self.node(s, path, "truncate")
            guard var node = s.nodes[id] else { return }
            let size = Int(clamping: max(size, 0))
            if size < node.data.count {
                node.data.removeLast(node.data.count - size)
            } else {
                node.data += [UInt8](repeating: 0, count: size - node.data.count)
            }
            s.nodes[id] = node
        }
    }

    public func fileSize(_ path: String) throws(StorageError) -> Int64 {
        try call("stat", path) { s throws(StorageError) in
            let id = try Self.node(s, path, "stat")
            return Int64(s.nodes[id]?.data.count ?? 0)
        }
    }

    public func fileExists(_ path: String) -> Bool {
        state.withLock { s in
            let key = Self.normalize(path)
            if s.directories[key] != nil { return true }
            let (directory, name) = Self.split(key)
            return s.directories[directory]?.entries[name] != nil
        }
    }

    public func lockExclusive(_ path: String, owner: String) throws(StorageError) -> StorageFileHandle {
        try call("lock", path) { s throws(StorageError) in
            let key = Self.normalize(path)
            if s.locks[key] != nil {
                throw StorageError(
                    code: .locked, message: "the data directory is in use (\(owner)); lock file \(path)", path: path)
            }
            let (directory, name) = Self.split(key)
            guard s.directories[directory] != nil else { throw Self.error("open lock file", path, ENOENT) }
            let id: Int
            if let existing = s.directories[directory]?.entries[name] {
                id = existing
            } else {
                id = s.nextNode
                s.nextNode += 1
                s.nodes[id] = Node()
                s.directories[directory]?.entries[name] = id
            }
            let handle = Self.open(&s, node: id, path: path)
            s.locks[key] = handle.descriptor
            return handle
        }
    }

    public func unlock(_ handle: StorageFileHandle) {
        state.withLock { s in
            let key = Self.normalize(handle.path)
            if s.locks[key] == handle.descriptor { s.locks[key] = nil }
            s.handles[handle.descriptor] = nil
        }
    }

    // MARK: Helpers

    private func call<T>(
        _ operation: String, _ path: String, counted: Bool = true, _ body: (inout State) throws(StorageError) -> T
    ) throws(StorageError) -> T {
        try state.withLock { (s: inout State) throws(StorageError) -> T in
            if counted { s.calls += 1 }
            if let at = s.crashAt, s.calls >= at { s.crashed = true }
            if s.crashed { throw Self.error(operation, path, EIO) }
            return try body(&s)
        }
    }

    private static func open(_ s: inout State, node: Int, path: String) -> StorageFileHandle {
        let descriptor = s.nextDescriptor
        s.nextDescriptor += 1
        s.handles[descriptor] = Open(node: node, path: path)
        return StorageFileHandle(descriptor: descriptor, path: path)
    }

    private static func node(_ s: State, _ path: String, _ operation: String) throws(StorageError) -> Int {
        let (directory, name) = split(path)
        guard let id = s.directories[directory]?.entries[name] else { throw error(operation, path, ENOENT) }
        return id
    }

    private static func error(_ operation: String, _ path: String, _ code: Int32) -> StorageError {
        StorageError.system(operation, path: path, errno: code)
    }

    static func normalize(_ path: String) -> String {
        var result = path.hasPrefix("/") ? path : "/" + path
        while result.count > 1, result.hasSuffix("/") { result.removeLast() }
        return result
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        let full = normalize(path)
        guard let slash = full.lastIndex(of: "/") else { return ("/", full) }
        let directory = slash == full.startIndex ? "/" : String(full[..<slash])
        return (directory, String(full[full.index(after: slash)...]))
    }

    /// xorshift64*: cheap and deterministic for a seed.
    private static func random(_ state: inout UInt64) -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}
