import NIOCore

/// Writes answers straight to a connection's channel, without its writer task (``ConnectionQueue/push(answers:)``
/// hands them back when nothing else is queued or being written): one hop to the event loop, one write and flush,
/// then the slots are released (``ConnectionQueue/written()``) as the writer task would.
struct AnswerWriter: Sendable {
    let channel: any Channel
    let queue: ConnectionQueue
    let connection: ConnectionState
    let metrics: ServerMetrics

    func write(_ direct: ConnectionQueue.Direct) {
        let channel = self.channel
        let queue = self.queue
        let connection = self.connection
        let metrics = self.metrics
        channel.eventLoop.execute {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            let last = direct.buffers.count - 1
            for (i, buffer) in direct.buffers.enumerated() {
                channel.write(buffer, promise: i == last ? promise : nil)
            }
            channel.flush()
            promise.futureResult.whenComplete { result in
                metrics.bytesOut.increment(by: direct.bytes)
                queue.written()
                connection.touch()
                // The channel is gone: as when the writer task's write fails, nothing more is written.
                if case .failure = result { queue.close() }
            }
        }
    }
}
