import RefundCore

/// The partition's outbox: compact records rendered into events when read, and dropped once acknowledged.
extension Partition {
    /// Events with `sequence < seq ≤ watermark`, at most `limit`.
    func events(after sequence: UInt64, upTo watermark: UInt64, limit: Int) -> [OutboxEvent] {
        // The outbox is appended in sequence order per partition: binary search for the start.
        var low = 0
        var high = outbox.count
        while low < high {
            let mid = (low + high) / 2
            if outbox[mid].sequence <= sequence { low = mid + 1 } else { high = mid }
        }
        var events: [OutboxEvent] = []
        var index = low
        while index < outbox.count, events.count < limit, outbox[index].sequence <= watermark {
            events.append(event(outbox[index]))
            index += 1
        }
        return events
    }

    /// Renders a compact outbox record. What it announces is a fact: the refund's amount, notify (kept with the
    /// record) and email text never change, and a failure names the one it announced; only the address is the
    /// order's email as it is now.
    func event(_ record: OutboxRecord) -> OutboxEvent {
        let state = states[Int(record.slot)]
        let refund = state.refunds[Int(record.refund) - 1]
        var text: String?
        if record.kind == .refundFailed {
            // The failure the event announced (failures are only ever appended), not the latest one.
            let t = Int(record.detail >> 16)
            let ordinal = Int(record.detail & 0xFFFF)
            if record.detail >= 0, t < refund.transactions.count, ordinal < refund.transactions[t].failures.count {
                text = refund.transactions[t].failures[ordinal].code
            } else {
                text = refund.transactions.compactMap { $0.failures.last?.code }.first
            }
        }
        // A bulk refund made before refunds kept their text: its job's (jobs are kept, and never change).
        let emailText = refund.emailText ?? refund.jobID.flatMap { shared.jobs.job($0)?.request.options.emailText }
        return OutboxEvent(
            sequence: record.sequence, kind: record.kind, at: record.at, orderID: state.order.id, refundID: refund.id,
            jobID: refund.jobID, notify: record.notify, notifyEmail: record.notify ? state.order.email : nil,
            amount: refund.amount, currency: state.order.currency, text: text, emailText: emailText)
    }

    /// Drops outbox events up to `sequence` (the subscriber has handled them).
    func acknowledgeEvents(upTo sequence: UInt64) {
        outbox.removeAll { $0.sequence <= sequence }
    }
}
