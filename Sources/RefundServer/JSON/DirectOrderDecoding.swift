import RefundCore

/// Reads an order straight from its parsed JSON, without the `Decodable` machinery: the hot part of `order.put`
/// and `order.put_many` (through ``JSONValueDecoder`` an order took about 10 µs, half the daemon's CPU per order
/// of an import, docs/performance.md).
///
/// It reads only what is plainly well formed: every key known, every value of its exact JSON type (integers as
/// integer literals, strings, booleans, `null` or absence for optional fields), enum values and currencies and
/// timestamps by the same functions `Order.init(from:)` uses. Anything else answers nil and the caller decodes
/// the same value again through `Order.init(from:)`, which names the error with its path. So this path never
/// accepts what the strict path refuses, and never words an error itself (`DirectOrderDecodingTests` checks both
/// on mutated orders).
enum DirectOrderDecoding {
    static func order(_ value: JSONValue) -> Order? {
        guard case .object(let members) = value else { return nil }
        var id: String?
        var event: String?
        var eventStartsAt: Timestamp?
        var customer: String?
        var email: String?
        var currency: Currency?
        var channel = Channel.online
        var source = OrderSource.paid
        var parent: String?
        var frozen = false
        var syncPending = false
        var bookingFee: Int64 = 0
        var lines: [OrderLine]?
        var tenders: [Tender] = []
        for (key, value) in members {
            switch key {
            case "id": guard let s = string(value) else { return nil }; id = s
            case "event": guard let s = string(value) else { return nil }; event = s
            case "event_starts_at":
                guard let s = optionalString(value) else { return nil }
                if let text = s { guard let t = Timestamp(iso8601: text) else { return nil }; eventStartsAt = t }
            case "customer": guard let s = optionalString(value) else { return nil }; customer = s
            case "email": guard let s = optionalString(value) else { return nil }; email = s
            case "currency":
                guard let s = string(value), let c = Currency(code: s) else { return nil }
                currency = c
            case "channel":
                guard let s = optionalString(value) else { return nil }
                if let text = s { guard let c = Channel(rawValue: text) else { return nil }; channel = c }
            case "source":
                guard let s = optionalString(value) else { return nil }
                if let text = s { guard let c = OrderSource(rawValue: text) else { return nil }; source = c }
            case "parent": guard let s = optionalString(value) else { return nil }; parent = s
            case "frozen": guard let b = optionalBool(value) else { return nil }; frozen = b ?? false
            case "sync_pending": guard let b = optionalBool(value) else { return nil }; syncPending = b ?? false
            case "booking_fee": guard let n = optionalInteger(value) else { return nil }; bookingFee = n ?? 0
            case "lines":
                guard case .array(let elements) = value else { return nil }
                var decoded: [OrderLine] = []
                decoded.reserveCapacity(elements.count)
                for element in elements {
                    guard let line = line(element) else { return nil }
                    decoded.append(line)
                }
                lines = decoded
            case "tenders":
                if case .null = value { continue }
                guard case .array(let elements) = value else { return nil }
                var decoded: [Tender] = []
                decoded.reserveCapacity(elements.count)
                for element in elements {
                    guard let tender = tender(element) else { return nil }
                    decoded.append(tender)
                }
                tenders = decoded
            default:
                return nil
            }
        }
        guard let id, let event, let currency, let lines else { return nil }
        return Order(
            id: id, event: event, eventStartsAt: eventStartsAt, customer: customer, email: email, currency: currency,
            channel: channel, source: source, parent: parent, frozen: frozen, syncPending: syncPending,
            bookingFee: bookingFee, lines: lines, tenders: tenders)
    }

    static func line(_ value: JSONValue) -> OrderLine? {
        guard case .object(let members) = value else { return nil }
        var id: String?
        var kind = LineKind.ticket
        var ticketType: String?
        var price: Int64?
        var discount: Int64 = 0
        var tax: Int64 = 0
        var processingFee: Int64 = 0
        var platformFee: Int64 = 0
        var transferred = false
        var claimed = false
        var holder: String?
        for (key, value) in members {
            switch key {
            case "id": guard let s = string(value) else { return nil }; id = s
            case "kind":
                guard let s = optionalString(value) else { return nil }
                if let text = s { guard let k = LineKind(rawValue: text) else { return nil }; kind = k }
            case "ticket_type": guard let s = optionalString(value) else { return nil }; ticketType = s
            case "price": guard case .int(let n) = value else { return nil }; price = n
            case "discount": guard let n = optionalInteger(value) else { return nil }; discount = n ?? 0
            case "tax": guard let n = optionalInteger(value) else { return nil }; tax = n ?? 0
            case "processing_fee": guard let n = optionalInteger(value) else { return nil }; processingFee = n ?? 0
            case "platform_fee": guard let n = optionalInteger(value) else { return nil }; platformFee = n ?? 0
            case "transferred": guard let b = optionalBool(value) else { return nil }; transferred = b ?? false
            case "claimed": guard let b = optionalBool(value) else { return nil }; claimed = b ?? false
            case "holder": guard let s = optionalString(value) else { return nil }; holder = s
            default: return nil
            }
        }
        guard let id, let price else { return nil }
        return OrderLine(
            id: id, kind: kind, ticketType: ticketType, price: price, discount: discount, tax: tax,
            processingFee: processingFee, platformFee: platformFee, transferred: transferred, claimed: claimed,
            holder: holder)
    }

    static func tender(_ value: JSONValue) -> Tender? {
        guard case .object(let members) = value else { return nil }
        var id: String?
        var method: TenderMethod?
        var amount: Int64?
        var gatewayRef: String?
        for (key, value) in members {
            switch key {
            case "id": guard let s = string(value) else { return nil }; id = s
            case "method": guard let s = string(value), let m = TenderMethod(rawValue: s) else { return nil }; method = m
            case "amount": guard case .int(let n) = value else { return nil }; amount = n
            case "gateway_ref": guard let s = optionalString(value) else { return nil }; gatewayRef = s
            default: return nil
            }
        }
        guard let id, let method, let amount else { return nil }
        return Tender(id: id, method: method, amount: amount, gatewayRef: gatewayRef)
    }

    // A required value of its type, or nil. An optional one: `.some(nil)` for null, `.some(value)`, or nil when the
    // JSON type is wrong.
    @inline(__always) static func string(_ value: JSONValue) -> String? {
        if case .string(let s) = value { return s }
        return nil
    }

    @inline(__always) static func optionalString(_ value: JSONValue) -> String?? {
        switch value {
        case .string(let s): return .some(s)
        case .null: return .some(nil)
        default: return nil
        }
    }

    @inline(__always) static func optionalBool(_ value: JSONValue) -> Bool?? {
        switch value {
        case .bool(let b): return .some(b)
        case .null: return .some(nil)
        default: return nil
        }
    }

    @inline(__always) static func optionalInteger(_ value: JSONValue) -> Int64?? {
        switch value {
        case .int(let n): return .some(n)
        case .null: return .some(nil)
        default: return nil
        }
    }
}
