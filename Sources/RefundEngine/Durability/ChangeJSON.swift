import RefundCore

/// One ``OrderChange`` as JSON: `{"type": "...", ...fields}`.
struct ChangeJSON: Encodable {
    let change: OrderChange

    init(_ change: OrderChange) { self.change = change }

    enum Key: String, CodingKey {
        case type, order, at, by, refund, options, transaction, result, recovery, reason, outcome, note, request
        case approved, update, transfer, line, accepted
        case refundID = "refund_id"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch change {
        case .placed(let order, let at, let by):
            try c.encode("placed", forKey: .type)
            try c.encode(order, forKey: .order)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .replaced(let order, let at, let by):
            try c.encode("replaced", forKey: .type)
            try c.encode(order, forKey: .order)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .refundCreated(let refund, let options):
            try c.encode("refund_created", forKey: .type)
            try c.encode(refund, forKey: .refund)
            try c.encodeIfPresent(options, forKey: .options)
        case .attemptResult(let refund, let transaction, let result, let at),
            .settled(let refund, let transaction, let result, let at):
            if case .attemptResult = change {
                try c.encode("attempt_result", forKey: .type)
            } else {
                try c.encode("settled", forKey: .type)
            }
            try c.encode(refund, forKey: .refund)
            try c.encode(transaction, forKey: .transaction)
            try c.encode(String(describing: result), forKey: .result)
            try c.encode(at, forKey: .at)
        case .retried(let refund, let at, let by):
            try c.encode("retried", forKey: .type)
            try c.encode(refund, forKey: .refund)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .recovered(let refund, let recovery):
            try c.encode("recovered", forKey: .type)
            try c.encode(refund, forKey: .refund)
            try c.encode(recovery, forKey: .recovery)
        case .disputeOpened(let reason, let at, let by):
            try c.encode("dispute_opened", forKey: .type)
            try c.encodeIfPresent(reason, forKey: .reason)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .disputeClosed(let outcome, let note, let at, let by):
            try c.encode("dispute_closed", forKey: .type)
            try c.encode(outcome, forKey: .outcome)
            try c.encodeIfPresent(note, forKey: .note)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .requestCreated(let request):
            try c.encode("request_created", forKey: .type)
            try c.encode(request, forKey: .request)
        case .requestDecided(let request, let approved, let note, let refundID, let at, let by):
            try c.encode("request_decided", forKey: .type)
            try c.encode(request, forKey: .request)
            try c.encode(approved, forKey: .approved)
            try c.encodeIfPresent(note, forKey: .note)
            try c.encodeIfPresent(refundID, forKey: .refundID)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .confirmationResent(let refund, let at, let by):
            try c.encode("confirmation_resent", forKey: .type)
            try c.encode(refund, forKey: .refund)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .lateAnswer(let refund, let answer):
            try c.encode("late_answer", forKey: .type)
            try c.encode(refund, forKey: .refund)
            try c.encode(answer, forKey: .result)
        case .factsUpdated(let update, let at, let by):
            try c.encode("facts_updated", forKey: .type)
            try c.encode(update, forKey: .update)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        case .ticketTransferred(let transfer):
            try c.encode("ticket_transferred", forKey: .type)
            try c.encode(transfer, forKey: .transfer)
        case .transferDecided(let line, let accepted, let at, let by):
            try c.encode("transfer_decided", forKey: .type)
            try c.encode(line, forKey: .line)
            try c.encode(accepted, forKey: .accepted)
            try c.encode(at, forKey: .at)
            try c.encode(by, forKey: .by)
        }
    }
}
