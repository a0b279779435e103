// libFuzzer target: the change codec and the engine's record envelopes (tools/fuzz.sh change).
//
// The first input byte picks the decoder (modulo 5), the rest is its input:
//   0  ChangeCodec.decode             one order's changes (the body of a partition log record)
//   1  PartitionJournal.decode        a partition log record: one commit (kind 1) or a commit batch (kind 2)
//   2  PartitionImageCodec.decode     a partition snapshot payload: order states, balances, outbox
//   3  OrderStateCodec.decode         one order state (the unit of a snapshot)
//   4  ControlLog.decode              a control log record (bulk jobs)
// Each must return a value or throw `BinaryDecodingError`; nothing may trap. The codecs promise one encoding per
// value, so what ChangeCodec and OrderStateCodec accept in their current version must encode back to the same
// bytes (older versions they still read are written anew in the current one).

import RefundCore
import RefundEngine

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChange(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count >= 1 else { return 0 }
    let selector = pointer[0] % 5
    let data = Array(UnsafeBufferPointer(start: pointer + 1, count: count - 1))
    do throws(BinaryDecodingError) {
        switch selector {
        case 0:
            let record = try ChangeCodec.decode(data)
            // Only the current version re-encodes to the same bytes (an older one is read, then written anew).
            if data.first == ChangeCodec.version, ChangeCodec.encode(orderID: record.orderID, record.changes) != data {
                fatalError("ChangeCodec accepted bytes that are not the encoding of what they decode to")
            }
        case 1:
            _ = try DurableRecordDecoding.decodePartitionLogRecord(data)
        case 2:
            _ = try DurableRecordDecoding.decodePartitionSnapshotPayload(data, sequence: 1)
        case 3:
            let state = try OrderStateCodec.decode(data)
            if data.first == OrderStateCodec.version, OrderStateCodec.encode(state) != data {
                fatalError("OrderStateCodec accepted bytes that are not the encoding of what they decode to")
            }
        default:
            try DurableRecordDecoding.validateControlRecord(data)
        }
    } catch {
        _ = error.description
    }
    return 0
}
