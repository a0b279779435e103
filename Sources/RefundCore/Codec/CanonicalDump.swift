/// A deterministic byte dump of a set of order states, for comparing "state before == state after" (for example a
/// partition before a crash and after recovery) and for hashing it.
///
/// Layout: `uvarint` state count, then each state's ``OrderStateCodec`` encoding, in ascending order of the order
/// id's UTF-8 bytes (ties, which a partition never has, broken by the encoded bytes). The input order of the states
/// never matters, and neither does the iteration order of any dictionary inside them.
public enum CanonicalDump {
    /// The canonical bytes of `states`.
    public static func bytes(_ states: some Sequence<OrderState>) -> [UInt8] {
        let encoded = sortedEncodings(states)
        var writer = BinaryWriter(capacity: encoded.reduce(10) { $0 + $1.bytes.count })
        writer.uvarint(UInt64(encoded.count))
        for entry in encoded { writer.raw(entry.bytes) }
        return writer.take()
    }

    /// FNV-1a 64 of the canonical bytes of `states`.
    public static func hash(_ states: some Sequence<OrderState>) -> UInt64 {
        fnv1a64(bytes(states))
    }

    /// Per order, in canonical order: its id and the FNV-1a 64 of its encoding. Handy to name which order differs.
    public static func digests(_ states: some Sequence<OrderState>) -> [(orderID: String, hash: UInt64)] {
        sortedEncodings(states).map { ($0.id, fnv1a64($0.bytes)) }
    }

    /// 64-bit FNV-1a.
    public static func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }

    private static func sortedEncodings(_ states: some Sequence<OrderState>) -> [(id: String, bytes: [UInt8])] {
        var encoded = states.map { (id: $0.order.id, bytes: OrderStateCodec.encode($0)) }
        encoded.sort { a, b in
            if a.id.utf8.elementsEqual(b.id.utf8) { return a.bytes.lexicographicallyPrecedes(b.bytes) }
            return a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
        }
        return encoded
    }
}
