#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Every failure of the storage layer. A struct with a nested code (like swift-service-lifecycle's errors) so codes
/// stay stable while messages can carry detail: the file, the byte offset and the `errno` where there is one.
public struct StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case io, corruption, compression, closed, invalidArgument, notFound, locked, missing
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A system call failed (`errno` is set).
        public static let io = Code(.io)
        /// Stored bytes fail a checksum or are structurally invalid (`path` and `offset` say where).
        public static let corruption = Code(.corruption)
        /// LZ4 refused to compress or decompress.
        public static let compression = Code(.compression)
        /// The log or store was closed.
        public static let closed = Code(.closed)
        /// The caller passed something unusable (too large a record, an unassigned sequence number, ...).
        public static let invalidArgument = Code(.invalidArgument)
        /// A file or directory does not exist.
        public static let notFound = Code(.notFound)
        /// Another process (or another open engine) holds the data directory's lock.
        public static let locked = Code(.locked)
        /// A file the manifest says must exist is gone, or the log does not reach back to the snapshot it needs:
        /// acknowledged data is missing (`path` names what is gone).
        public static let missing = Code(.missing)

        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String
    /// The file concerned, when there is one.
    public let path: String?
    /// The byte offset in `path`, for corruption.
    public let offset: Int64?
    /// The `errno` of the failed system call, for `.io`.
    public let errno: Int32?

    public init(code: Code, message: String, path: String? = nil, offset: Int64? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    /// A failed system call: the message names the operation, the path and the errno text.
    public static func system(_ operation: String, path: String?, errno code: Int32) -> StorageError {
        let text = String(cString: strerror(code))
        let on = path.map { " \($0)" } ?? ""
        return StorageError(
            code: code == ENOENT ? .notFound : .io,
            message: "\(operation)\(on) failed: \(text) (errno \(code))",
            path: path, errno: code)
    }

    public static func corruption(_ message: String, path: String, offset: Int64) -> StorageError {
        StorageError(
            code: .corruption, message: "\(message) in \(path) at byte offset \(offset)", path: path,
            offset: offset)
    }

    public var description: String { "StorageError.\(code): \(message)" }
}

// `Array.withUnsafeBytes` is `rethrows` (untyped), so typed-throwing bodies go through a `Result`.
@inline(__always)
func withBytes<R>(_ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(StorageError) -> R)
    throws(StorageError) -> R
{
    let result: Result<R, StorageError> = array.withUnsafeBytes { buffer in
        Result { () throws(StorageError) -> R in try body(buffer) }
    }
    return try result.get()
}

@inline(__always)
func withBytes<R>(_ slice: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) throws(StorageError) -> R)
    throws(StorageError) -> R
{
    let result: Result<R, StorageError> = slice.withUnsafeBytes { buffer in
        Result { () throws(StorageError) -> R in try body(buffer) }
    }
    return try result.get()
}

@inline(__always)
func withMutableBytes<R>(
    _ array: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(StorageError) -> R
) throws(StorageError) -> R {
    let result: Result<R, StorageError> = array.withUnsafeMutableBytes { buffer in
        Result { () throws(StorageError) -> R in try body(buffer) }
    }
    return try result.get()
}
