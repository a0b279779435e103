// libFuzzer target: the snapshot file decoder (tools/fuzz.sh snapshot).
//
// The input is one snapshot file. `SnapshotStore.decode` must either return a snapshot or throw `.corruption`;
// it must never trap or allocate more than the file can stand for. A snapshot it accepts must encode back to a
// file that decodes to the same snapshot.

import RefundStorage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSnapshot(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Array(UnsafeBufferPointer(start: pointer, count: count))
    do {
        let snapshot = try SnapshotStore.decode(data, path: "fuzz.snap")
        let again = try SnapshotStore.decode(try SnapshotStore.encode(snapshot), path: "again.snap")
        if again != snapshot { fatalError("a decoded snapshot does not survive encode and decode") }
    } catch {
        if error.code != .corruption { fatalError("decode threw \(error.code): \(error.message)") }
    }
    return 0
}
