import CLZ4

/// LZ4 block compression (liblz4's `LZ4_compress_default` / `LZ4_decompress_safe`). The block format carries no
/// length, so callers store the uncompressed length next to the compressed bytes and pass it back to `decompress`.
public enum LZ4Codec {
    /// The largest input LZ4 accepts in one block (`LZ4_MAX_INPUT_SIZE`).
    public static let maxInputSize = 0x7E00_0000

    /// Compresses `input`. An empty input compresses to an empty output.
    public static func compress(_ input: [UInt8]) throws(StorageError) -> [UInt8] {
        try withBytes(input) { (buffer) throws(StorageError) -> [UInt8] in try compress(buffer) }
    }

    public static func compress(_ input: UnsafeRawBufferPointer) throws(StorageError) -> [UInt8] {
        guard let source = input.baseAddress, input.count > 0 else { return [] }
        guard input.count <= maxInputSize else {
            throw StorageError(code: .compression, message: "LZ4 input of \(input.count) bytes is too large")
        }
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        var written: Int32 = 0
        let output = [UInt8](unsafeUninitializedCapacity: bound) { target, initialized in
            written = source.withMemoryRebound(to: CChar.self, capacity: input.count) { src in
                target.withMemoryRebound(to: CChar.self) { dst in
                    guard let dstBase = dst.baseAddress else { return 0 }
                    return LZ4_compress_default(src, dstBase, Int32(input.count), Int32(bound))
                }
            }
            initialized = Int(Swift.max(written, 0))
        }
        guard written > 0 else {
            throw StorageError(code: .compression, message: "LZ4 compression of \(input.count) bytes failed")
        }
        return output
    }

    /// Decompresses `input`, which must expand to exactly `uncompressedCount` bytes; anything else (corrupt input,
    /// a wrong length) throws `.compression` and never reads or writes out of bounds.
    public static func decompress(_ input: [UInt8], uncompressedCount: Int) throws(StorageError) -> [UInt8] {
        try withBytes(input) { (buffer) throws(StorageError) -> [UInt8] in
            try decompress(buffer, uncompressedCount: uncompressedCount)
        }
    }

    public static func decompress(_ input: ArraySlice<UInt8>, uncompressedCount: Int) throws(StorageError)
        -> [UInt8]
    {
        try withBytes(input) { (buffer) throws(StorageError) -> [UInt8] in
            try decompress(buffer, uncompressedCount: uncompressedCount)
        }
    }

    public static func decompress(_ input: UnsafeRawBufferPointer, uncompressedCount: Int) throws(StorageError)
        -> [UInt8]
    {
        guard uncompressedCount >= 0, uncompressedCount <= maxInputSize else {
            throw StorageError(
                code: .compression, message: "LZ4 uncompressed length \(uncompressedCount) is out of range")
        }
        if uncompressedCount == 0 {
            guard input.isEmpty else {
                throw StorageError(
                    code: .compression, message: "LZ4 data of \(input.count) bytes for an empty block")
            }
            return []
        }
        guard let source = input.baseAddress, input.count > 0, input.count <= maxInputSize else {
            throw StorageError(code: .compression, message: "LZ4 input of \(input.count) bytes is invalid")
        }
        var produced: Int32 = -1
        let output = [UInt8](unsafeUninitializedCapacity: uncompressedCount) { target, initialized in
            produced = source.withMemoryRebound(to: CChar.self, capacity: input.count) { src in
                target.withMemoryRebound(to: CChar.self) { dst in
                    guard let dstBase = dst.baseAddress else { return -1 }
                    return LZ4_decompress_safe(src, dstBase, Int32(input.count), Int32(uncompressedCount))
                }
            }
            initialized = Int(Swift.max(produced, 0))
        }
        guard Int(produced) == uncompressedCount else {
            throw StorageError(
                code: .compression,
                message: produced < 0
                    ? "corrupt LZ4 data (\(input.count) bytes, error \(produced))"
                    : "LZ4 data expanded to \(produced) bytes, expected \(uncompressedCount)")
        }
        return output
    }
}
