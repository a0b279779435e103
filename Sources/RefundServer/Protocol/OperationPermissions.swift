import RefundCore
import RefundEngine

/// Who may run an op: the table of docs/protocol.md, "Permissions", in code. Every op names its rule in
/// ``Operation/access`` (an exhaustive switch: a new op does not compile until it has one), and the server checks
/// it before the op reaches the engine, so a caller without the permission is refused whatever the op's other
/// fields say (an unknown order included) and nothing changes.
enum OperationAccess: Sendable, Equatable {
    /// Connection and liveness ops (`auth`, `ping`, `hello`, `health`): they read and change no engine data.
    case connection
    /// The caller needs this permission.
    case permission(Permission)
    /// The caller needs one of these (a buyer's own request, or staff on the buyer's behalf).
    case anyOf([Permission])
    /// What the refund options need (``RefundPlanner/checkPermissions(_:_:)``: `refund` for money, `cancel` for
    /// method none, `self_service` for a self-service refund, plus `apply_cancellation_fee` with a fee and
    /// `override_fees` with policy full), and `also` when given.
    case refundOptions(RefundOptions, also: Permission?)
}

extension Operation {
    var access: OperationAccess {
        switch self {
        case .auth, .ping, .hello, .health:
            .connection
        case .orderPut, .orderPutMany, .orderUpdate, .orderTransfer, .transferDecide:
            // The checkout (or the sync behind it) reports an order and what later happens to it.
            .permission(.placeOrder)
        case .orderGet, .orderList, .orderTimeline, .refundGet, .refundList, .refundReceipt, .refundAttention, .refundRequests,
            .balanceGet, .inventoryGet, .bulkStatus, .bulkResults, .eventGet, .stats:
            .permission(.read)
        case .orderCancel(_, let refund, let method, let reason, let note, let restock, let lines):
            // Cancelling is the cancel permission; returning money as well needs refund (the options say so).
            .refundOptions(
                RefundOptions(lines: lines, method: refund ? method : .none, reason: reason, note: note, restock: restock),
                also: .cancel)
        case .orderModerate(_, let outcome, let note, let lines):
            .refundOptions(
                RefundOptions(
                    lines: lines, method: outcome == .invalidateRefund ? .original : .none, reason: "moderation", note: note),
                also: nil)
        case .orderModeratePerLine(_, let outcomes, let note):
            // What the refund needs when there is one (else the cancellation's); the engine checks each refund's
            // options, so a caller without the other permission is refused whole.
            .refundOptions(
                RefundOptions(
                    method: outcomes.contains { $0.outcome == .invalidateRefund } ? .original : .none, reason: "moderation", note: note),
                also: nil)
        case .refundPreview(_, let options), .refundCreate(_, let options):
            .refundOptions(options, also: nil)
        case .bulkCancelEvent(let request, _):
            .refundOptions(request.options, also: nil)
        case .bulkPause, .bulkResume, .bulkAbort:
            // Whoever may cancel orders may steer a job that does (a resumed job refunds as the caller who
            // started it, with that caller's permissions).
            .anyOf([.cancel, .refund])
        case .refundApprove(_, let options, _):
            // Approving is a staff decision, whatever the method it refunds with.
            .refundOptions(options, also: .refund)
        case .refundRequest:
            // The engine also checks that a self-service caller is the order's customer.
            .anyOf([.selfService, .refund])
        case .refundDecline, .refundSettle, .refundRetry, .refundResend, .disputeOpen, .disputeClose:
            .permission(.refund)
        case .refundRecover:
            .permission(.recordRecovery)
        case .eventsSubscribe, .eventsList, .eventsAck:
            .permission(.events)
        case .snapshot, .eventPut:
            .permission(.admin)
        }
    }

    /// Throws `permission_denied` naming the op and the permission when `caller` may not run this op.
    func authorize(_ caller: Caller, op: String) throws(RefundError) {
        switch access {
        case .connection:
            return
        case .permission(let permission):
            try caller.require(permission, for: op)
        case .anyOf(let permissions):
            guard permissions.contains(where: caller.permissions.contains) else {
                throw RefundError(
                    .permissionDenied,
                    "\(op) needs one of the permissions \(permissions.map { "'\($0.rawValue)'" }.joined(separator: ", ")); \(caller.id) has none")
            }
        case .refundOptions(let options, let also):
            if let also { try caller.require(also, for: op) }
            try RefundPlanner.checkPermissions(options, caller)
        }
    }

    /// The op's name as the protocol spells it (for messages).
    var name: String {
        switch self {
        case .auth: "auth"
        case .ping: "ping"
        case .hello: "hello"
        case .health: "health"
        case .orderPut: "order.put"
        case .orderPutMany: "order.put_many"
        case .orderGet: "order.get"
        case .orderUpdate: "order.update"
        case .orderTransfer: "order.transfer"
        case .transferDecide(_, _, let accept): accept ? "transfer.accept" : "transfer.cancel"
        case .orderList: "order.list"
        case .orderTimeline: "order.timeline"
        case .orderCancel: "order.cancel"
        case .orderModerate, .orderModeratePerLine: "order.moderate"
        case .refundPreview: "refund.preview"
        case .refundCreate: "refund.create"
        case .refundGet: "refund.get"
        case .refundList: "refund.list"
        case .refundRequest: "refund.request"
        case .refundApprove: "refund.approve"
        case .refundDecline: "refund.decline"
        case .refundSettle: "refund.settle"
        case .refundRetry: "refund.retry"
        case .refundRecover: "refund.recover"
        case .refundReceipt: "refund.receipt"
        case .refundResend: "refund.resend"
        case .refundAttention: "refund.attention"
        case .refundRequests: "refund.requests"
        case .disputeOpen: "dispute.open"
        case .disputeClose: "dispute.close"
        case .balanceGet: "balance.get"
        case .inventoryGet: "inventory.get"
        case .bulkCancelEvent: "bulk.cancel_event"
        case .bulkStatus: "bulk.status"
        case .bulkPause: "bulk.pause"
        case .bulkResume: "bulk.resume"
        case .bulkAbort: "bulk.abort"
        case .eventPut: "event.put"
        case .eventGet: "event.get"
        case .bulkResults: "bulk.results"
        case .eventsSubscribe: "events.subscribe"
        case .eventsList: "events.list"
        case .eventsAck: "events.ack"
        case .stats: "stats"
        case .snapshot: "snapshot"
        }
    }
}
