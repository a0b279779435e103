import NIOCore

/// What the line splitter hands to a connection: a complete line, or the news that a line went over the limit.
enum InboundLine: Sendable, Equatable {
    /// One line without its `\n` (and without a `\r` before it).
    case line(ByteBuffer)
    /// A line longer than the limit: it is being (or was) discarded up to its newline; answered once.
    case tooLong
}

/// Splits the byte stream at `\n`, holding at most `maximumLineBytes` of one line.
///
/// Unlike `LineBasedFrameDecoder` wrapped in `ByteToMessageHandler(maximumBufferSize:)`, which throws and so
/// closes the connection, an over-long line is reported once (``InboundLine/tooLong``) and then discarded up to
/// its newline, and the next line is read as usual: the connection stays usable and memory stays bounded. Blank
/// lines are skipped. A partial line at end of input is dropped (the client went away mid-request).
struct BoundedLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = InboundLine

    let maximumLineBytes: Int
    /// Readable bytes already searched for a newline (so a long line is scanned once, not once per read).
    private var scanned = 0
    /// Inside an over-long line: drop bytes until its newline.
    private var discarding = false

    init(maximumLineBytes: Int) {
        self.maximumLineBytes = max(1, maximumLineBytes)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let readable = buffer.readableBytes
        let newline = buffer.withUnsafeReadableBytes { bytes -> Int? in
            var i = scanned
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "\n") { return i }
                i += 1
            }
            return nil
        }
        guard let newline else {
            if discarding {
                buffer.moveReaderIndex(forwardBy: readable)
                scanned = 0
            } else if readable > maximumLineBytes {
                discarding = true
                buffer.moveReaderIndex(forwardBy: readable)
                scanned = 0
                context.fireChannelRead(wrapInboundOut(.tooLong))
            } else {
                scanned = readable
            }
            return .needMoreData
        }
        scanned = 0
        if discarding {
            discarding = false
            buffer.moveReaderIndex(forwardBy: newline + 1)
            return .continue
        }
        var length = newline
        if length > maximumLineBytes {
            buffer.moveReaderIndex(forwardBy: newline + 1)
            context.fireChannelRead(wrapInboundOut(.tooLong))
            return .continue
        }
        if length > 0, buffer.getInteger(at: buffer.readerIndex + length - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            length -= 1
        }
        let line = buffer.getSlice(at: buffer.readerIndex, length: length)
        buffer.moveReaderIndex(forwardBy: newline + 1)
        if let line, line.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(.line(line)))
        }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // What is left is half a line: the client went away (or half-closed) mid-request. Drop it.
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        scanned = 0
        return .needMoreData
    }
}
