/// Public access to the binary encoding of ``RefundOptions`` (the same encoding ``ChangeCodec`` uses), for
/// records outside an order's changes: bulk jobs in the engine's control log.
public enum RefundOptionsCodec {
    public static func encode(_ options: RefundOptions, into writer: inout BinaryWriter) {
        writer.write(options)
    }

    public static func decode(from reader: inout BinaryReader) throws(BinaryDecodingError) -> RefundOptions {
        try reader.readRefundOptions()
    }
}
