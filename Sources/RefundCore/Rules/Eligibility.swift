/// What blocks a refund, per order and per line (contract section 5). Pure: reads the state, changes nothing.
public enum Eligibility {
    /// Order-level reasons for a refund with `method`.
    public static func orderReasons(
        _ state: OrderState, method: RefundMethod, selfService: Bool, context: RefundContext
    ) -> [EligibilityReason] {
        var reasons: [EligibilityReason] = []
        let order = state.order
        if order.frozen { reasons.append(.orderFrozen) }
        if order.syncPending { reasons.append(.syncPending) }
        if state.hasPendingTransaction { reasons.append(.refundInProgress) }
        if state.openDispute != nil { reasons.append(.disputed) }
        if context.childrenActive { reasons.append(.childOrdersActive) }
        if method != .none {
            // Nothing was paid, or what was paid is used up while lines are still active (an order whose every
            // line is refunded is not "unpaid": its lines answer already_refunded).
            var gross: Int64 = 0
            for tender in order.tenders { gross &+= tender.amount }
            if order.source != .paid || gross == 0 || (state.totalRemaining <= 0 && state.activeLineCount > 0) {
                reasons.append(.noPaymentToRefund)
            }
        }
        if selfService {
            var closed = method != .balance || order.customer == nil
            if let starts = order.eventStartsAt {
                let cutoff = starts.adding(milliseconds: -context.selfServiceCutoffHours * 3_600_000)
                if context.now >= cutoff { closed = true }
            } else {
                closed = true
            }
            if closed { reasons.append(.selfServiceClosed) }
        }
        return reasons
    }

    /// Which self-service rule blocks a refund of `state` (for `self_service_closed` messages): the first rule
    /// of ``orderReasons(_:method:selfService:context:)`` that fails, or the line rule for `line` when given;
    /// nil when none does.
    public static func selfServiceRule(_ state: OrderState, method: RefundMethod, line: String?, context: RefundContext)
        -> String?
    {
        let order = state.order
        if method != .balance { return "self-service refunds go to the account balance only (method balance)" }
        if order.customer == nil { return "the order has no customer (a box-office sale)" }
        guard let starts = order.eventStartsAt else {
            return "the order has no event start time, so its self-service window is unknown"
        }
        let cutoff = starts.adding(milliseconds: -context.selfServiceCutoffHours * 3_600_000)
        if context.now >= cutoff {
            let whose = context.selfServiceCutoffIsEventSetting ? "event \(order.event)'s own cutoff" : "the engine's cutoff"
            return "self-service closes \(context.selfServiceCutoffHours) h before the event (\(whose); it starts \(starts.iso8601)), so it closed at \(cutoff.iso8601)"
        }
        if let line, let found = order.lines.first(where: { $0.id == line }), found.kind != .ticket {
            return "line \(line) is a \(found.kind.rawValue), and self-service refunds only tickets"
        }
        return nil
    }

    /// Line-level reasons for line `index`. `balanceLeft` is the customer balance not yet claimed by earlier
    /// selected top-up lines of the same refund.
    public static func lineReasons(
        _ state: OrderState, index: Int, method: RefundMethod, selfService: Bool, balanceLeft: inout Int64
    ) -> [EligibilityReason] {
        var reasons: [EligibilityReason] = []
        let line = state.order.lines[index]
        if state.lineStatus[index] != .active { reasons.append(.alreadyRefunded) }
        let money = method != .none
        switch line.kind {
        case .giftVoucher where line.claimed: reasons.append(.giftVoucherClaimed)
        case .deposit where money: reasons.append(.depositNotRefundable)
        case .walletTopUp:
            // Removing a top-up takes its credit back off the balance whatever the method (money back to the
            // tender, or a cancellation with none): blocked when the balance no longer covers it.
            if balanceLeft < line.paidValue {
                reasons.append(.walletBalanceSpent)
            } else {
                balanceLeft -= line.paidValue
            }
        default: break
        }
        if line.transferred && money { reasons.append(.transferredAfterCheckout) }
        if selfService && line.kind != .ticket { reasons.append(.selfServiceClosed) }
        // A ticket on its way to someone else: the buyer cannot take it back by refunding it themselves.
        if selfService, state.pendingTransfer(line: line.id) != nil { reasons.append(.transferPending) }
        return reasons
    }
}
