import RefundCore
import RefundStorage
import Synchronization

/// The refund engine, for embedding: orders in memory in N partition actors (an order's handle picks its
/// partition), refunds and cancellations by the contract's rules, a payment gateway the embedding service
/// provides, automatic retries, and bulk event cancellation.
///
/// ```swift
/// let engine = Engine(gateway: SimulatedGateway())
/// try await engine.putOrder(order)
/// let refund = try await engine.createRefund(orderID: "ord_1", RefundOptions(method: .original, reason: "event_cancelled"), caller: .staff("ops"))
/// ```
public final class Engine: Sendable {
    public let configuration: EngineConfiguration
    let shared: EngineShared
    let partitions: [Partition]
    let gateway: any PaymentGateway
    /// Orders named as a parent by some child order: only these need the cross-partition child check.
    let parents = Mutex<Set<String>>([])
    /// Serialises refunds of wallet top-ups per customer (they read the balance across partitions, then debit).
    let topUpLocks = KeyedAsyncLock()
    /// Per (members-only event, purchaser): transfers back to the purchaser, one at a time (see `transferTicket`).
    let transferBackLocks = KeyedAsyncLock()
    let retryLoop = Mutex<Task<Void, Never>?>(nil)

    /// The data directory, for a durable engine (see ``open(configuration:durability:gateway:clock:)``).
    let durability: DurabilityOptions?
    /// The control log: bulk jobs started and finished.
    let control: ControlLog?
    /// Partitions with a snapshot being written.
    let snapshotting = Mutex<Set<Int>>([])
    let recoveredSummary = Mutex<RecoverySummary?>(nil)
    /// The data directory's lock, held from open to close (or kill).
    let directoryLock = Mutex<StorageFileHandle?>(nil)
    /// One snapshot per partition at a time.
    let snapshotLocks = KeyedAsyncLock()
    let snapshotHealth = Mutex(SnapshotHealth())
    /// Settlements delivered through the channel that the engine refused (counted in stats).
    let droppedSettlements = Atomic<Int>(0)
    /// Paces gateway calls under ``EngineConfiguration/gatewayLimits`` (nil: unlimited).
    let pacer: GatewayPacer?

    /// An in-memory engine: nothing is logged (tests, simulations, caches of a system of record).
    public convenience init(
        configuration: EngineConfiguration = EngineConfiguration(), gateway: any PaymentGateway = SimulatedGateway(),
        clock: any EngineClock = SystemClock()
    ) {
        self.init(
            configuration: configuration, gateway: gateway, clock: clock,
            journals: [PartitionJournal?](repeating: nil, count: max(1, configuration.partitions)), durability: nil,
            control: nil, recovery: nil)
    }

    init(
        configuration: EngineConfiguration, gateway: any PaymentGateway, clock: any EngineClock,
        journals: [PartitionJournal?], durability: DurabilityOptions?, control: ControlLog?, recovery: RecoverySummary?
    ) {
        let shared = EngineShared(configuration: configuration, clock: clock)
        self.configuration = configuration
        self.shared = shared
        self.partitions = journals.enumerated().map { Partition(index: $0.offset, shared: shared, journal: $0.element) }
        self.gateway = gateway
        self.pacer = configuration.gatewayLimits.isUnlimited ? nil : GatewayPacer(configuration.gatewayLimits)
        self.durability = durability
        self.control = control
        shared.control.withLock { $0 = control }
    }

    var clock: any EngineClock { shared.clock }

    /// Why the engine stopped accepting changes (a failed write or fsync, a killed engine), or nil while it
    /// runs. Once set it stays: the way on is a restart, which recovers from what is on disk.
    public var failure: RefundError? { shared.stopped.withLock { $0 } }

    @inline(__always)
    func partition(for orderID: String) -> Partition {
        partitions[Int(StableHash.fnv1a(orderID) % UInt64(partitions.count))]
    }

    // MARK: Orders

    /// `order.put`: validates and stores an order. Identical content again is a no-op; different content is
    /// accepted until the order has a refund (`order_immutable` after).
    @discardableResult
    public func putOrder(_ order: Order, caller: String = "checkout") async throws(RefundError) -> OrderView {
        try OrderValidation.validate(order)
        // Registered before the child is stored, so a concurrent refund of the parent can never miss it. If the
        // put then fails, the entry only costs that parent a cross-partition check that finds nothing: it is not
        // state anyone can observe.
        if let parent = order.parent { parents.withLock { _ = $0.insert(parent) } }
        let partition = partition(for: order.id)
        let view = try await partition.put(order, by: caller)
        try await durable(partition)
        return view
    }

    /// Stores many orders, one hop per partition. Returns the rejected ones by index with their errors.
    public func putOrders(_ orders: [Order], caller: String = "checkout") async -> [(index: Int, error: RefundError)] {
        var errors: [(index: Int, error: RefundError)] = []
        var batches = [[(Int, Order)]](repeating: [], count: partitions.count)
        var newParents: [String] = []
        for (i, order) in orders.enumerated() {
            do throws(RefundError) {
                try OrderValidation.validate(order)
                if let parent = order.parent { newParents.append(parent) }
                batches[Int(StableHash.fnv1a(order.id) % UInt64(partitions.count))].append((i, order))
            } catch {
                errors.append((i, error))
            }
        }
        if !newParents.isEmpty { parents.withLock { $0.formUnion(newParents) } }
        await withTaskGroup(of: [(index: Int, error: RefundError)].self) { group in
            for (p, batch) in batches.enumerated() where !batch.isEmpty {
                group.addTask {
                    let partition = self.partitions[p]
                    let failed = await partition.putMany(batch.map { $0.1 }, by: caller)
                    do throws(RefundError) {
                        try await self.durable(partition)
                    } catch {
                        return batch.map { (index: $0.0, error: error) }
                    }
                    return failed.map { (index: batch[$0.0].0, error: $0.1) }
                }
            }
            for await failed in group { errors += failed }
        }
        return errors.sorted { $0.index < $1.index }
    }

    public func order(_ orderID: String) async throws(RefundError) -> OrderView {
        let partition = partition(for: orderID)
        let view = try await partition.view(orderID)
        try await durable(partition)
        return view
    }

    /// The raw aggregate of an order (for audits and tests).
    public func orderState(_ orderID: String) async throws(RefundError) -> OrderState {
        let partition = partition(for: orderID)
        let state = try await partition.state(orderID)
        try await durable(partition)
        return state
    }

    /// `order.timeline`: every entry with the facts of the refund, transaction or dispute it is about.
    public func timelineItems(_ orderID: String) async throws(RefundError) -> [TimelineItem] {
        let partition = partition(for: orderID)
        let items = try await partition.timelineItems(orderID)
        try await durable(partition)
        return items
    }

    public func timeline(_ orderID: String) async throws(RefundError) -> [TimelineEntry] {
        let partition = partition(for: orderID)
        let timeline = try await partition.timeline(orderID)
        try await durable(partition)
        return timeline
    }

    // MARK: Refunds

    /// `refund.create`: refunds or cancels lines of an order. Card transactions go to the gateway before this
    /// returns; a refund the gateway accepted for later confirmation comes back `pending`.
    @discardableResult
    public func createRefund(orderID: String, _ options: RefundOptions, caller: Caller) async throws(RefundError) -> Refund {
        try await create(orderID: orderID, options, caller: caller, requestNumber: nil, adminNote: nil)
    }

    func create(orderID: String, _ options: RefundOptions, caller: Caller, requestNumber: Int?, adminNote: String?)
        async throws(RefundError) -> Refund
    {
        let partition = partition(for: orderID)
        let childrenActive = await childrenActive(orderID)
        var result = try await partition.createRefund(
            orderID, options, caller: caller, childrenActive: childrenActive, balance: nil, requestNumber: requestNumber,
            adminNote: adminNote)
        if case .needsBalance(let customer, let currency) = result {
            // Wallet top-up: read the balance across partitions and debit under a per-customer lock, so two
            // top-up refunds cannot both spend the same balance. Credits need no lock: they only add.
            let lock = await topUpLocks.acquire(customer)
            defer { Task { await lock.release() } }
            let balance = await self.balance(customer: customer, currency: currency)
            result = try await partition.createRefund(
                orderID, options, caller: caller, childrenActive: childrenActive, balance: balance,
                requestNumber: requestNumber, adminNote: adminNote)
        }
        try await durable(partition)
        switch result {
        case .repeated(let refund):
            return refund
        case .needsBalance:
            throw RefundError(.invalidState, "the balance of the order's customer could not be read")
        case .created(let refund, let attempts):
            guard !attempts.isEmpty else { return refund }
            let touched = await send(attempts, to: partition)
            try await durable(partition)
            return touched.last { $0.id == refund.id } ?? refund
        }
    }

    /// `refund.preview`: what a refund with these options would do now, what is blocked and why, and the
    /// methods available. Changes nothing.
    public func preview(orderID: String, _ options: RefundOptions, caller: Caller) async throws(RefundError) -> RefundPreview {
        let childrenActive = await childrenActive(orderID)
        let partition = partition(for: orderID)
        let summary = await partition.orderSummary(orderID)
        var balance: Int64 = 0
        if let summary, summary.hasTopUps, let customer = summary.customer {
            balance = await self.balance(customer: customer, currency: summary.currency)
        }
        let preview = try await partition.preview(orderID, options, caller: caller, childrenActive: childrenActive, balance: balance)
        try await durable(partition)
        return preview
    }

    /// `order.cancel`: removes every active line, or only `lines` when given. With `refund` the money goes back
    /// by `method`; without it the lines are cancelled with no money (method none).
    @discardableResult
    public func cancelOrder(
        orderID: String, refund: Bool, method: RefundMethod = .original, reason: String, note: String? = nil,
        restock: Bool = true, lines: [String]? = nil, caller: Caller
    ) async throws(RefundError) -> Refund {
        try await createRefund(
            orderID: orderID,
            RefundOptions(lines: lines, method: refund ? method : .none, reason: reason, note: note, restock: restock),
            caller: caller)
    }

    public enum ModerationOutcome: String, Sendable, Codable, CaseIterable {
        case invalidateRefund = "invalidate_refund"
        case invalidateNoRefund = "invalidate_no_refund"
    }

    /// A moderation outcome: the order (or only `lines` when given) is invalidated with reason `moderation`,
    /// refunded to the original tenders or cancelled without money.
    @discardableResult
    public func moderate(
        orderID: String, outcome: ModerationOutcome, note: String?, lines: [String]? = nil, caller: Caller
    ) async throws(RefundError) -> Refund {
        try await createRefund(
            orderID: orderID,
            RefundOptions(
                lines: lines, method: outcome == .invalidateRefund ? .original : .none, reason: "moderation", note: note),
            caller: caller)
    }

    /// A moderation with an outcome per line (`outcomes`: line id → outcome), as a ban flow decides per affected
    /// ticket: the `invalidate_refund` lines are refunded to the original tenders, the `invalidate_no_refund`
    /// lines cancelled without money, as two refunds (the cancellation without money first) made together: both
    /// or neither, in one log record. Returns the refunds made (one when every line has the same outcome).
    @discardableResult
    public func moderate(
        orderID: String, outcomes: [String: ModerationOutcome], note: String?, caller: Caller
    ) async throws(RefundError) -> [Refund] {
        let partition = partition(for: orderID)
        let childrenActive = await childrenActive(orderID)
        var result = try await partition.moderate(
            orderID, outcomes: outcomes, note: note, caller: caller, childrenActive: childrenActive, balance: nil)
        if case .needsBalance(let customer, let currency) = result {
            // As for one refund (``create(orderID:_:caller:requestNumber:adminNote:)``): the balance is read and
            // debited under the customer's lock.
            let lock = await topUpLocks.acquire(customer)
            defer { Task { await lock.release() } }
            let balance = await self.balance(customer: customer, currency: currency)
            result = try await partition.moderate(
                orderID, outcomes: outcomes, note: note, caller: caller, childrenActive: childrenActive, balance: balance)
        }
        try await durable(partition)
        guard case .created(let refunds, let attempts) = result else {
            throw RefundError(.invalidState, "the balance of the order's customer could not be read")
        }
        guard !attempts.isEmpty else { return refunds }
        let touched = await send(attempts, to: partition)
        try await durable(partition)
        return refunds.map { refund in touched.last { $0.id == refund.id } ?? refund }
    }

    public func refund(_ refundID: String) async throws(RefundError) -> Refund {
        let partition = try partition(forRefund: refundID)
        let refund = try await partition.refund(refundID).0
        try await durable(partition)
        return refund
    }

    func partition(forRefund refundID: String) throws(RefundError) -> Partition {
        guard let parsed = RefundID.parse(refundID) else {
            throw RefundError(.refundNotFound, "'\(refundID.prefix(140))' is not a refund id")
        }
        return partition(for: parsed.order)
    }

    /// `refund.list`: the refunds of an order, of an event, or with a status.
    public func refunds(orderID: String? = nil, event: String? = nil, status: TransactionStatus? = nil, limit: Int = 1000)
        async throws(RefundError) -> [Refund]
    {
        if let orderID {
            let refunds = try await order(orderID).refunds
            return refunds.filter { status == nil || $0.status == status }.prefix(limit).map { $0 }
        }
        return await gather { await $0.refunds(event: event, status: status, limit: limit) }.prefix(limit).map { $0 }
    }

    /// `refund.settle`: the gateway's late answer for a pending card transaction.
    @discardableResult
    public func settle(
        refundID: String, tender: String, attempt: Int? = nil, succeeded: Bool, reference: String? = nil,
        failureCode: String? = nil, retryable: Bool = false
    ) async throws(RefundError) -> Refund {
        let partition = try partition(forRefund: refundID)
        let (refund, attempts) = try await partition.settle(
            refundID, tender: tender, attempt: attempt, succeeded: succeeded, reference: reference,
            failureCode: failureCode, retryable: retryable)
        try await durable(partition)
        if attempts.isEmpty { return refund }
        let touched = await send(attempts, to: partition)
        try await durable(partition)
        return touched.last { $0.id == refundID } ?? refund
    }

    /// `refund.retry`: a failed refund goes to the gateway again, for the same amounts.
    @discardableResult
    public func retry(refundID: String, caller: Caller) async throws(RefundError) -> Refund {
        let partition = try partition(forRefund: refundID)
        let (refund, attempts) = try await partition.retry(refundID, caller: caller)
        shared.metrics.manualRetries.increment()
        try await durable(partition)
        if attempts.isEmpty { return refund }
        let touched = await send(attempts, to: partition)
        try await durable(partition)
        return touched.last { $0.id == refundID } ?? refund
    }

    /// `refund.recover`: adds an action to a failed refund's recovery log. `contacted_buyer` and `other` take it
    /// out of the attention queue (until a retry fails again) and may be repeated; `refunded_externally` and
    /// `written_off` close it.
    @discardableResult
    public func recover(refundID: String, action: RecoveryAction, note: String, caller: Caller) async throws(RefundError)
        -> Refund
    {
        let partition = try partition(forRefund: refundID)
        let refund = try await partition.recover(refundID, action: action, note: note, caller: caller)
        try await durable(partition)
        return refund
    }

    /// `refund.resend`: queues the buyer confirmation again.
    @discardableResult
    public func resendConfirmation(refundID: String, caller: Caller) async throws(RefundError) -> Refund {
        let partition = try partition(forRefund: refundID)
        let refund = try await partition.resend(refundID, caller: caller)
        try await durable(partition)
        return refund
    }

    /// `refund.receipt`.
    public func receipt(refundID: String) async throws(RefundError) -> Receipt {
        let partition = try partition(forRefund: refundID)
        let (refund, order) = try await partition.refund(refundID)
        try await durable(partition)
        return Receipt(refund: refund, order: order)
    }

    /// The attention queue: failed refunds not yet retried successfully or recovered.
    public func attention(limit: Int = 1000) async -> [Refund] {
        await gather { await $0.attention(limit: limit) }.prefix(limit).map { $0 }
    }

    // MARK: Disputes and requests

    /// `order.update`: changes facts of an order that are not money (frozen, sync pending, a line transferred
    /// after checkout or back, a voucher claimed), also after refunds; each change is in the timeline. Refund
    /// decisions from then on see the new facts (a ticket transferred back to its purchaser can be refunded).
    @discardableResult
    public func updateOrder(orderID: String, _ update: OrderFactsUpdate, caller: Caller) async throws(RefundError)
        -> OrderView
    {
        let partition = partition(for: orderID)
        let view = try await partition.updateOrder(orderID, update, caller: caller)
        try await durable(partition)
        return view
    }

    @discardableResult
    public func openDispute(orderID: String, reason: String?, caller: Caller) async throws(RefundError) -> OrderView {
        let partition = partition(for: orderID)
        let view = try await partition.openDispute(orderID, reason: reason, caller: caller)
        try await durable(partition)
        return view
    }

    @discardableResult
    public func closeDispute(orderID: String, outcome: DisputeOutcome, note: String?, caller: Caller) async throws(RefundError)
        -> OrderView
    {
        let partition = partition(for: orderID)
        let view = try await partition.closeDispute(orderID, outcome: outcome, note: note, caller: caller)
        try await durable(partition)
        return view
    }

    /// `refund.request`: a buyer asks for a refund (all lines when `lines` is nil).
    public func requestRefund(orderID: String, lines: [String]?, reason: String, caller: Caller) async throws(RefundError)
        -> RefundRequest
    {
        let partition = partition(for: orderID)
        let request = try await partition.requestRefund(orderID, lines: lines, reason: reason, caller: caller)
        try await durable(partition)
        return request
    }

    /// `refund.approve`: staff approve an open request; the refund is created with `options` (its `lines`
    /// default to the request's).
    public func approveRequest(requestID: String, _ options: RefundOptions, note: String?, caller: Caller)
        async throws(RefundError) -> Refund
    {
        guard let parsed = RequestID.parse(requestID) else {
            throw RefundError(.requestNotFound, "'\(requestID.prefix(140))' is not a request id")
        }
        let request = try await partition(for: parsed.order).openRequest(requestID)
        var options = options
        if options.lines == nil { options.lines = request.lines }
        return try await create(orderID: parsed.order, options, caller: caller, requestNumber: parsed.number, adminNote: note)
    }

    /// `refund.decline`.
    public func declineRequest(requestID: String, note: String?, caller: Caller) async throws(RefundError) -> RefundRequest {
        guard let parsed = RequestID.parse(requestID) else {
            throw RefundError(.requestNotFound, "'\(requestID.prefix(140))' is not a request id")
        }
        let partition = partition(for: parsed.order)
        let request = try await partition.declineRequest(requestID, note: note, caller: caller)
        try await durable(partition)
        return request
    }

    public func openRequests(limit: Int = 1000) async -> [RefundRequest] {
        await gather { await $0.openRequests(limit: limit) }.sorted { $0.createdAt < $1.createdAt }.prefix(limit).map { $0 }
    }

    // MARK: Balances, inventory, events, stats

    /// `balance.get`: the customer's account balance as the engine has seen it move (top-ups, wallet spending,
    /// refunds to the wallet or balance, top-up refunds).
    public func balance(customer: String, currency: Currency) async -> Int64 {
        var total: Int64 = 0
        for partition in partitions {
            total.addSaturating(await partition.balance(of: customer, currency: currency.code))
        }
        await readBarrier()
        return total
    }

    /// `balance.get` for every currency the customer has moved money in: currency code → balance.
    public func balances(customer: String) async -> [String: Int64] {
        var total: [String: Int64] = [:]
        for partition in partitions {
            for (currency, amount) in await partition.balances(of: customer) {
                total[currency, default: 0].addSaturating(amount)
            }
        }
        await readBarrier()
        return total
    }

    /// `inventory.get`: units released back to sale per ticket type.
    public func inventoryReleased() async -> [String: Int64] {
        var total: [String: Int64] = [:]
        for partition in partitions {
            for (ticketType, units) in await partition.inventoryReleased() { total[ticketType, default: 0] += units }
        }
        await readBarrier()
        return total
    }

    /// Outbox events after `cursor`, oldest first (at-least-once: resume from the last sequence handled).
    public func events(after cursor: UInt64, limit: Int = 1000) async -> [OutboxEvent] {
        // Read the watermark first: every event at or below it is already appended, or is appended by a
        // partition before our hop to it runs (reservation and append happen in one actor turn).
        let watermark = shared.lastSequence
        var events = shared.engineOutbox.withLock { outbox in
            outbox.filter { $0.sequence > cursor && $0.sequence <= watermark }
        }
        for partition in partitions {
            events += await partition.events(after: cursor, upTo: watermark, limit: limit)
        }
        events.sort { $0.sequence < $1.sequence }
        await readBarrier()
        return Array(events.prefix(limit))
    }

    /// Drops handled events up to `sequence`. Durable: after a restart they are not delivered again, and their
    /// numbers are never handed out again.
    public func acknowledgeEvents(upTo sequence: UInt64) async throws(RefundError) {
        if let stopped = shared.stopped.withLock({ $0 }) { throw stopped }
        if let control {
            do throws(StorageError) {
                try await control.acknowledged(upTo: sequence)
            } catch {
                throw shared.failStop(error, log: "control log")
            }
        }
        shared.acknowledged(upTo: sequence)
        shared.engineOutbox.withLock { $0.removeAll { $0.sequence <= sequence } }
        for partition in partitions { await partition.acknowledgeEvents(upTo: sequence) }
    }

    public struct Statistics: Sendable, Equatable, Codable {
        public var partitions: Int
        /// Orders and refunds held; once the engine has stopped, only those that are durable.
        public var orders: Int
        public var refunds: Int
        public var pendingOrders: Int
        public var outboxEvents: Int
        public var ordersPerPartition: [Int]
        /// `running`, or `stopped` after a fail-stop (then `failure` says why: the errno text and the file).
        public var state: String = "running"
        public var failure: String?
        /// How snapshots have gone (durable engines only).
        public var snapshots: SnapshotHealth?
        /// Settlements a gateway delivered that the engine refused (each is logged).
        public var droppedSettlements: Int = 0

        enum CodingKeys: String, CodingKey {
            case partitions, orders, refunds, state, failure, snapshots
            case droppedSettlements = "dropped_settlements"
            case pendingOrders = "pending_orders", outboxEvents = "outbox_events", ordersPerPartition = "orders_per_partition"
        }
    }

    public func statistics() async -> Statistics {
        await readBarrier()
        var stats = Statistics(partitions: partitions.count, orders: 0, refunds: 0, pendingOrders: 0, outboxEvents: 0, ordersPerPartition: [])
        for partition in partitions {
            let s = await partition.statistics()
            stats.orders += s.orders
            stats.refunds += s.refunds
            stats.pendingOrders += s.pendingOrders
            stats.outboxEvents += s.outboxEvents
            stats.ordersPerPartition.append(s.orders)
        }
        if let failure {
            stats.state = "stopped"
            stats.failure = failure.message
        }
        if durability != nil { stats.snapshots = snapshotHealth.withLock { $0 } }
        stats.droppedSettlements = droppedSettlements.load(ordering: .relaxed)
        return stats
    }

    /// Sets the metrics that are sizes rather than events (orders, refunds, pending, the attention queue, the
    /// outbox, stopped or not) from the engine as it is now: call it before each scrape (`refundd` does).
    public func refreshMetrics() async {
        let stats = await statistics()
        let metrics = shared.metrics
        metrics.orders.record(stats.orders)
        metrics.refunds.record(stats.refunds)
        metrics.pendingOrders.record(stats.pendingOrders)
        metrics.outboxEvents.record(stats.outboxEvents)
        // Bounded: an attention queue this long is already an alert.
        metrics.attentionQueue.record(await attention(limit: 100_000).count)
        metrics.stopped.record(failure == nil ? 0 : 1)
        var pending: [RefundMethod: Int] = [:]
        for partition in partitions {
            for (method, count) in await partition.pendingRefundsByMethod() { pending[method, default: 0] += count }
        }
        for (method, gauge) in metrics.pending { gauge.record(pending[method] ?? 0) }
    }

    /// `health`: ready once recovery is done (an engine exists only after it), not ready while fail-stopped.
    public struct Health: Sendable, Equatable, Codable {
        public var ready: Bool
        public var state: String
        public var reason: String?
    }

    public func health() -> Health {
        if let failure { return Health(ready: false, state: "stopped", reason: failure.message) }
        return Health(ready: true, state: "running", reason: nil)
    }

    /// Every order's state, sorted by order id (audits, and comparing two engines in tests).
    public func allOrderStates() async -> [OrderState] {
        await gather { await $0.allStates() }.sorted { $0.order.id < $1.order.id }
    }

    /// A hash of the canonical dump of every order (`CanonicalDump` in RefundCore): equal for equal states.
    public func canonicalHash() async -> UInt64 {
        CanonicalDump.hash(await allOrderStates())
    }

    // MARK: Helpers

    func childrenActive(_ orderID: String) async -> Bool {
        guard parents.withLock({ $0.contains(orderID) }) else { return false }
        for partition in partitions where await partition.hasActiveChildren(of: orderID) { return true }
        return false
    }

    /// Runs `body` on every partition concurrently and concatenates the results in partition order, once what
    /// it read is durable (see ``readBarrier()``).
    func gather<T: Sendable>(_ body: @escaping @Sendable (Partition) async -> [T]) async -> [T] {
        let result = await withTaskGroup(of: (Int, [T]).self) { group in
            for (i, partition) in partitions.enumerated() { group.addTask { (i, await body(partition)) } }
            var parts = [[T]](repeating: [], count: partitions.count)
            for await (i, part) in group { parts[i] = part }
            return parts.flatMap { $0 }
        }
        await readBarrier()
        return result
    }

    /// Reads across partitions return only once everything each partition had appended is durable, so no
    /// caller sees a change a crash could take back. (A failed log stops the engine; these non-throwing reads
    /// then return what memory holds, and every change is refused with `engine_stopped`.)
    func readBarrier() async {
        for partition in partitions where partition.journal != nil { try? await durable(partition) }
        if let control {
            // Engine events are logged in the control log; wait for everything appended to it so far.
            let last = control.log.nextSequence - 1
            if last > 0 { try? await control.log.waitDurable(last) }
        }
    }
}
