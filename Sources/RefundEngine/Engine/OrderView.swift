import RefundCore

/// An order as queries return it: what the checkout sent, plus where each line and tender stands, status and
/// totals, refunds, disputes and requests.
public struct OrderView: Sendable, Equatable, Codable {
    public struct LineView: Sendable, Equatable, Codable {
        public var id: String
        public var kind: LineKind
        public var ticketType: String?
        public var paidValue: Int64
        public var status: LineStatus
        /// A ticket's holder when it is not the purchaser.
        public var holder: String?
        /// A ticket's: with the purchaser, designated at checkout, or transferred since (nil for other lines).
        public var holderState: HolderState?
        /// A ticket's transfers, oldest first (nil when it never moved).
        public var transfers: [TicketTransfer]?

        enum CodingKeys: String, CodingKey {
            case id, kind, status
            case ticketType = "ticket_type", paidValue = "paid_value"
            case holder, holderState = "holder_state", transfers
        }
    }

    public struct TenderView: Sendable, Equatable, Codable {
        public var id: String
        public var method: TenderMethod
        public var amount: Int64
        /// Returned or on its way back.
        public var refunded: Int64
    }

    public var order: Order
    public var status: OrderStatus
    public var totals: OrderTotals
    public var lines: [LineView]
    public var tenders: [TenderView]
    public var refunds: [Refund]
    public var disputed: Bool
    public var requests: [RefundRequest]

    init(_ state: OrderState) {
        order = state.order
        status = state.status
        totals = state.totals
        let purchaser = state.order.customer
        let transfers = state.transfers
        lines = state.order.lines.enumerated().map { i, line in
            let ticket = line.kind == .ticket
            let moves = transfers.isEmpty ? [] : transfers.filter { $0.line == line.id }
            return LineView(
                id: line.id, kind: line.kind, ticketType: line.ticketType, paidValue: line.paidValue,
                status: state.lineStatus[i], holder: line.holder == purchaser ? nil : line.holder,
                holderState: ticket ? HolderState(line, purchaser: purchaser) : nil, transfers: moves.isEmpty ? nil : moves)
        }
        tenders = state.order.tenders.enumerated().map { i, tender in
            // Claimed minus what failed transactions still owe it (unless recovered as refunded externally).
            var owed: Int64 = 0
            for refund in state.refunds where refund.recovery?.action != .refundedExternally {
                for transaction in refund.transactions where transaction.tender == tender.id && transaction.status == .failed {
                    owed &+= transaction.amount
                }
            }
            return TenderView(id: tender.id, method: tender.method, amount: tender.amount, refunded: state.tenderRefunded[i] &- owed)
        }
        refunds = state.refunds
        disputed = state.openDispute != nil
        requests = state.requests
    }
}
