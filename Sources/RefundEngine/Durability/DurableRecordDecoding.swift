import RefundCore

/// Public entry points to the decoders of the engine's own on-disk records, which are otherwise internal: the
/// partition log envelope (`PartitionJournal`), the partition snapshot payload (`PartitionImageCodec`) and the
/// control log (`ControlLog`).
///
/// They exist for the libFuzzer targets in `Fuzz/` (which link the library without `@testable`) and for offline
/// tools that want to check bytes without opening an engine. Each decodes exactly as recovery does and throws the
/// `BinaryDecodingError` that recovery reports as `data_corrupt`; none of them traps on any input.
public enum DurableRecordDecoding {
    /// Decodes one record of a partition's write-ahead log into the commits it holds (one for a record of kind
    /// 1, one or more for a commit batch, kind 2): per commit the outbox ranges it reserved, its order id and
    /// changes.
    public static func decodePartitionLogRecord(_ bytes: [UInt8]) throws(BinaryDecodingError)
        -> [(outboxRanges: [(first: UInt64, count: Int)], orderID: String, changes: [OrderChange])]
    {
        try PartitionJournal.decode(bytes).map { ($0.outbox, $0.orderID, $0.changes) }
    }

    /// Decodes a partition snapshot's payload (what `SnapshotStore` holds for a partition) into its order states.
    public static func decodePartitionSnapshotPayload(_ bytes: [UInt8], sequence: UInt64) throws(BinaryDecodingError)
        -> [OrderState]
    {
        try PartitionImageCodec.decode(bytes, sequence: sequence).states
    }

    /// Decodes one record of the engine's control log (bulk jobs).
    public static func validateControlRecord(_ bytes: [UInt8]) throws(BinaryDecodingError) {
        _ = try ControlLog.decode(bytes)
    }
}
