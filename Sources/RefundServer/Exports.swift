// The protocol's JSON lives in its own module, shared with refundctl; `import RefundServer` keeps bringing it
// (`JSONValueDecoder`, `JSONParser`, `JSONBytesEncoder`, …) for embedders that decode their own requests with it.
@_exported import RefundJSON
