/// The stable numeric wire codes of every enum the binary codecs write.
///
/// These tables ARE the format: a code, once written to a log or a snapshot, must keep its meaning forever.
/// They are written out case by case on purpose — never derived from the declaration order of a Swift enum or from
/// `CaseIterable` — so reordering or inserting cases in the model cannot silently change what old bytes mean.
/// New cases get new codes at the end; codes are never reused. Decoding an unknown code is an error.

extension Channel {
    var wireCode: UInt8 {
        switch self {
        case .online: 0
        case .boxOffice: 1
        case .import: 2
        case .api: 3
        case .invoice: 4
        case .kiosk: 5
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .online
        case 1: self = .boxOffice
        case 2: self = .import
        case 3: self = .api
        case 4: self = .invoice
        case 5: self = .kiosk
        default: return nil
        }
    }
}

extension OrderSource {
    var wireCode: UInt8 {
        switch self {
        case .paid: 0
        case .free: 1
        case .comp: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .paid
        case 1: self = .free
        case 2: self = .comp
        default: return nil
        }
    }
}

extension LineKind {
    var wireCode: UInt8 {
        switch self {
        case .ticket: 0
        case .product: 1
        case .fee: 2
        case .giftVoucher: 3
        case .deposit: 4
        case .walletTopUp: 5
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .ticket
        case 1: self = .product
        case 2: self = .fee
        case 3: self = .giftVoucher
        case 4: self = .deposit
        case 5: self = .walletTopUp
        default: return nil
        }
    }
}

extension TenderMethod {
    var wireCode: UInt8 {
        switch self {
        case .card: 0
        case .wallet: 1
        case .giftCard: 2
        case .cash: 3
        case .bankTransfer: 4
        case .other: 5
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .card
        case 1: self = .wallet
        case 2: self = .giftCard
        case 3: self = .cash
        case 4: self = .bankTransfer
        case 5: self = .other
        default: return nil
        }
    }
}

extension TransactionStatus {
    var wireCode: UInt8 {
        switch self {
        case .pending: 0
        case .succeeded: 1
        case .failed: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .pending
        case 1: self = .succeeded
        case 2: self = .failed
        default: return nil
        }
    }
}

extension TransactionMethod {
    var wireCode: UInt8 {
        switch self {
        case .card: 0
        case .wallet: 1
        case .giftCard: 2
        case .cash: 3
        case .bankTransfer: 4
        case .other: 5
        case .balance: 6
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .card
        case 1: self = .wallet
        case 2: self = .giftCard
        case 3: self = .cash
        case 4: self = .bankTransfer
        case 5: self = .other
        case 6: self = .balance
        default: return nil
        }
    }
}

extension RecoveryAction {
    var wireCode: UInt8 {
        switch self {
        case .contactedBuyer: 0
        case .refundedExternally: 1
        case .writtenOff: 2
        case .other: 3
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .contactedBuyer
        case 1: self = .refundedExternally
        case 2: self = .writtenOff
        case 3: self = .other
        default: return nil
        }
    }
}

extension RefundMethod {
    var wireCode: UInt8 {
        switch self {
        case .original: 0
        case .offline: 1
        case .balance: 2
        case .none: 3
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .original
        case 1: self = .offline
        case 2: self = .balance
        case 3: self = .none
        default: return nil
        }
    }
}

extension RefundPolicy {
    var wireCode: UInt8 {
        switch self {
        case .standard: 0
        case .full: 1
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .standard
        case 1: self = .full
        default: return nil
        }
    }
}

/// The case tag of a ``CancellationFee``.
enum CancellationFeeTag {
    static let perLine: UInt8 = 0
    static let each: UInt8 = 1
    static let order: UInt8 = 2
}

extension Permission {
    var wireCode: UInt8 {
        switch self {
        case .refund: 0
        case .applyCancellationFee: 1
        case .cancel: 2
        case .overrideFees: 3
        case .recordRecovery: 4
        case .selfService: 5
        case .placeOrder: 6
        case .read: 7
        case .events: 8
        case .admin: 9
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .refund
        case 1: self = .applyCancellationFee
        case 2: self = .cancel
        case 3: self = .overrideFees
        case 4: self = .recordRecovery
        case 5: self = .selfService
        case 6: self = .placeOrder
        case 7: self = .read
        case 8: self = .events
        case 9: self = .admin
        default: return nil
        }
    }
}

extension DisputeOutcome {
    var wireCode: UInt8 {
        switch self {
        case .won: 0
        case .lost: 1
        case .withdrawn: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .won
        case 1: self = .lost
        case 2: self = .withdrawn
        default: return nil
        }
    }
}

extension RefundRequest.Status {
    var wireCode: UInt8 {
        switch self {
        case .open: 0
        case .approved: 1
        case .declined: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .open
        case 1: self = .approved
        case 2: self = .declined
        default: return nil
        }
    }
}

extension LineStatus {
    var wireCode: UInt8 {
        switch self {
        case .active: 0
        case .refunded: 1
        case .cancelled: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .active
        case 1: self = .refunded
        case 2: self = .cancelled
        default: return nil
        }
    }
}

extension TimelineEntry.Kind {
    var wireCode: UInt8 {
        switch self {
        case .orderPlaced: 0
        case .orderReplaced: 1
        case .refundCreated: 2
        case .cancellationCreated: 3
        case .attemptSucceeded: 4
        case .attemptAccepted: 5
        case .attemptFailed: 6
        case .retryScheduled: 7
        case .refundRetried: 8
        case .refundRecovered: 9
        case .disputeOpened: 10
        case .disputeClosed: 11
        case .requestCreated: 12
        case .requestApproved: 13
        case .requestDeclined: 14
        case .confirmationResent: 15
        case .attemptUnknown: 16
        case .lateAnswer: 17
        case .orderUpdated: 18
        case .ticketTransferred: 19
        case .transferPending: 20
        case .transferCancelled: 21
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .orderPlaced
        case 1: self = .orderReplaced
        case 2: self = .refundCreated
        case 3: self = .cancellationCreated
        case 4: self = .attemptSucceeded
        case 5: self = .attemptAccepted
        case 6: self = .attemptFailed
        case 7: self = .retryScheduled
        case 8: self = .refundRetried
        case 9: self = .refundRecovered
        case 10: self = .disputeOpened
        case 11: self = .disputeClosed
        case 12: self = .requestCreated
        case 13: self = .requestApproved
        case 14: self = .requestDeclined
        case 15: self = .confirmationResent
        case 16: self = .attemptUnknown
        case 17: self = .lateAnswer
        case 18: self = .orderUpdated
        case 19: self = .ticketTransferred
        case 20: self = .transferPending
        case 21: self = .transferCancelled
        default: return nil
        }
    }
}

/// The case tag of an ``AttemptResult``.
enum AttemptResultTag {
    static let succeeded: UInt8 = 0
    static let accepted: UInt8 = 1
    static let failed: UInt8 = 2
    static let unknown: UInt8 = 3
}

/// How a refund's recovery log is written (see `ByteSink.write(recoveries:beforeRetry:)`): 0 and 1 are the
/// bytes of the optional single recovery that came before the log, so older data reads unchanged.
enum RecoveryLogTag {
    static let none: UInt8 = 0
    static let one: UInt8 = 1
    static let log: UInt8 = 2
}

/// The case tag of an ``OrderChange`` (starting at 1, so a zeroed byte is never a valid change).
enum OrderChangeTag {
    static let placed: UInt8 = 1
    static let replaced: UInt8 = 2
    static let refundCreated: UInt8 = 3
    static let attemptResult: UInt8 = 4
    static let settled: UInt8 = 5
    static let retried: UInt8 = 6
    static let recovered: UInt8 = 7
    static let disputeOpened: UInt8 = 8
    static let disputeClosed: UInt8 = 9
    static let requestCreated: UInt8 = 10
    static let requestDecided: UInt8 = 11
    static let confirmationResent: UInt8 = 12
    static let lateAnswer: UInt8 = 13
    static let factsUpdated: UInt8 = 14
    static let ticketTransferred: UInt8 = 15
    static let transferDecided: UInt8 = 16
}

extension TicketTransfer.Status {
    var wireCode: UInt8 {
        switch self {
        case .completed: 0
        case .pending: 1
        case .cancelled: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .completed
        case 1: self = .pending
        case 2: self = .cancelled
        default: return nil
        }
    }
}
