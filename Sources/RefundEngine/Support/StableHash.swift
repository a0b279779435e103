/// FNV-1a, 64-bit, over UTF-8: a stable hash for routing order handles to partitions. Swift's `Hasher` is
/// seeded per process, so it cannot route: an order must land in the same partition after a restart.
enum StableHash {
    @inline(__always)
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
