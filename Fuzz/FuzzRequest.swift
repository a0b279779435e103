// libFuzzer target: the protocol's request decoder (tools/fuzz.sh request).
//
// The input is one request line (without its newline), decoded as the server's connection loop decodes it:
// JSONParser over the bytes, JSONValueDecoder into the request, the op's arguments validated. Any line must give
// an operation or a protocol error; nothing may trap.

import RefundServer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let outcome = RequestLineDecoding.decode(UnsafeRawBufferPointer(start: pointer, count: count))
    if let error = outcome.error, error.code.rawValue.isEmpty { fatalError("an error without a code") }
    return 0
}
