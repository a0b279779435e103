import RefundCore

/// One request of a batch (``Engine/execute(_:)``): the hot operations a server reads many of at once.
public enum BatchRequest: Sendable {
    /// `refund.create`.
    case createRefund(orderID: String, options: RefundOptions, caller: Caller)
    /// `order.get`.
    case order(String)
    /// `refund.get`.
    case refund(String)
    /// `order.put`.
    case putOrder(Order, caller: String)

    /// The order the request is about (it picks the partition).
    var orderID: String? {
        switch self {
        case .createRefund(let id, _, _), .order(let id): id
        case .refund(let id): RefundID.parse(id)?.order
        case .putOrder(let order, _): order.id
        }
    }
}

/// The answer to one ``BatchRequest``, in the batch's order.
public enum BatchAnswer: Sendable {
    case refund(Refund)
    case order(OrderView)
    case failure(RefundError)
}

extension Engine {
    /// Runs many requests with **one actor hop per partition** (not one per request), one durability wait per
    /// partition, and one gateway call per partition for the card refunds the batch created: what the server
    /// does with every line it read from a connection in one go.
    ///
    /// Each answer is what the request alone would have answered (``createRefund(orderID:_:caller:)``,
    /// ``order(_:)``, ``refund(_:)``, ``putOrder(_:caller:)``), and requests about the same order run in the
    /// order given. Requests about different orders have no order among themselves (as on a connection).
    /// An acknowledged answer is durable, as for a single request.
    public func execute(_ batch: [BatchRequest]) async -> [BatchAnswer] {
        var answers = [BatchAnswer?](repeating: nil, count: batch.count)
        var byPartition = [[Int]](repeating: [], count: partitions.count)
        for (i, request) in batch.enumerated() {
            guard let orderID = request.orderID else {
                if case .refund(let id) = request {
                    answers[i] = .failure(RefundError(.refundNotFound, "'\(id.prefix(140))' is not a refund id"))
                }
                continue
            }
            byPartition[Int(StableHash.fnv1a(orderID) % UInt64(partitions.count))].append(i)
        }
        // What must run before the partition hop: validation and the parent registry for puts, the
        // cross-partition child check for refunds of parent orders (rare: only orders named as a parent).
        var prepared = [PreparedRequest](repeating: .ready, count: batch.count)
        for (i, request) in batch.enumerated() where answers[i] == nil {
            switch request {
            case .putOrder(let order, _):
                do throws(RefundError) {
                    try OrderValidation.validate(order)
                    if let parent = order.parent { parents.withLock { _ = $0.insert(parent) } }
                } catch {
                    answers[i] = .failure(error)
                }
            case .createRefund(let orderID, _, _):
                if await childrenActive(orderID) { prepared[i] = .childrenActive }
            case .order, .refund:
                break
            }
        }
        let work = byPartition.enumerated().compactMap { p, indices -> (Int, [Int])? in
            let open = indices.filter { answers[$0] == nil }
            return open.isEmpty ? nil : (p, open)
        }
        let ready = prepared
        // One partition (every unpipelined request, and many small batches): run it here, without a child task.
        let results =
            work.count == 1
            ? await run(work[0].1.map { ($0, batch[$0], ready[$0]) }, on: partitions[work[0].0])
            : await withTaskGroup(of: [(Int, BatchAnswer?)].self) { group in
            for (p, indices) in work {
                let items = indices.map { ($0, batch[$0], ready[$0]) }
                let partition = partitions[p]
                group.addTask { await self.run(items, on: partition) }
            }
            var all: [(Int, BatchAnswer?)] = []
            for await part in group { all += part }
            return all
        }
        for (i, answer) in results { answers[i] = answer }
        // Requests the batch could not take (a wallet top-up that needs the customer's balance across partitions)
        // and every later request about the same order: one at a time, in order, by the single-request path.
        for i in batch.indices where answers[i] == nil {
            answers[i] = await executeAlone(batch[i])
        }
        return answers.map { $0 ?? .failure(RefundError(.invalidState, "a batched request got no answer")) }
    }

    enum PreparedRequest: Sendable {
        case ready
        case childrenActive
    }

    /// One partition's share of a batch: one hop for all of it, one durability wait, one gateway call, in
    /// rounds: a request about an order whose refund earlier in the batch is still to be sent waits for the next
    /// round (after the gateway's answer), as it would have waited alone. A nil answer: run it alone afterwards.
    private func run(_ items: [(Int, BatchRequest, PreparedRequest)], on partition: Partition) async -> [(Int, BatchAnswer?)] {
        var results: [(Int, BatchAnswer?)] = []
        results.reserveCapacity(items.count)
        var round = items
        while !round.isEmpty {
            let outcomes = await partition.runBatch(round.map { ($0.1, $0.2 == .childrenActive) })
            do throws(RefundError) {
                try await durable(partition)
            } catch {
                return results + round.map { ($0.0, .failure(error)) }
            }
            var attempts: [PendingAttempt] = []
            for outcome in outcomes {
                if case .created(_, let pending) = outcome { attempts += pending }
            }
            var touched: [String: Refund] = [:]
            if !attempts.isEmpty {
                for refund in await send(attempts, to: partition) { touched[refund.id] = refund }
                do throws(RefundError) {
                    try await durable(partition)
                } catch {
                    return results + round.map { ($0.0, .failure(error)) }
                }
            }
            var next: [(Int, BatchRequest, PreparedRequest)] = []
            for (item, outcome) in zip(round, outcomes) {
                switch outcome {
                case .created(let refund, _): results.append((item.0, .refund(touched[refund.id] ?? refund)))
                case .answered(let answer): results.append((item.0, answer))
                case .nextRound: next.append(item)
                case .alone: results.append((item.0, nil))
                }
            }
            precondition(next.count < round.count, "every round of a batch answers its first request")
            round = next
        }
        return results
    }

    /// One request by the single-request path.
    func executeAlone(_ request: BatchRequest) async -> BatchAnswer {
        do throws(RefundError) {
            switch request {
            case .createRefund(let orderID, let options, let caller):
                return .refund(try await createRefund(orderID: orderID, options, caller: caller))
            case .order(let id):
                return .order(try await order(id))
            case .refund(let id):
                return .refund(try await refund(id))
            case .putOrder(let order, let caller):
                return .order(try await putOrder(order, caller: caller))
            }
        } catch {
            return .failure(error)
        }
    }
}

/// What a partition did with one request of a batch.
enum BatchOutcome: Sendable {
    /// A refund was created; its gateway requests are to be sent.
    case created(Refund, attempts: [PendingAttempt])
    /// Answered (a read, a put, a repeated idempotent refund, or a refusal).
    case answered(BatchAnswer)
    /// Not run yet: an earlier request of the batch created a refund of its order that is still to be sent to
    /// the gateway. It runs in the next round, after the answer.
    case nextRound
    /// Not run: it needs the single-request path (and so does every later request about its order).
    case alone
}

extension Partition {
    /// A batch's share for this partition, in order, in one hop. `childrenActive`: the engine found active
    /// children of the order in some partition.
    func runBatch(_ items: [(BatchRequest, childrenActive: Bool)]) -> [BatchOutcome] {
        var outcomes: [BatchOutcome] = []
        outcomes.reserveCapacity(items.count)
        // Orders with a refund this round created and the gateway has not answered yet, and orders left to the
        // single-request path: later requests about them wait.
        var sending: Set<String> = []
        var alone: Set<String> = []
        for (request, childrenActive) in items {
            if let orderID = request.orderID {
                if !alone.isEmpty, alone.contains(orderID) {
                    outcomes.append(.alone)
                    continue
                }
                if !sending.isEmpty, sending.contains(orderID) {
                    outcomes.append(.nextRound)
                    continue
                }
            }
            do throws(RefundError) {
                switch request {
                case .createRefund(let orderID, let options, let caller):
                    switch try createRefund(orderID, options, caller: caller, childrenActive: childrenActive, balance: nil) {
                    case .created(let refund, let attempts):
                        if !attempts.isEmpty { sending.insert(orderID) }
                        outcomes.append(.created(refund, attempts: attempts))
                    case .repeated(let refund):
                        outcomes.append(.answered(.refund(refund)))
                    case .needsBalance:
                        alone.insert(orderID)
                        outcomes.append(.alone)
                    }
                case .order(let id):
                    outcomes.append(.answered(.order(try view(id))))
                case .refund(let id):
                    outcomes.append(.answered(.refund(try refund(id).0)))
                case .putOrder(let order, let caller):
                    outcomes.append(.answered(.order(try put(order, by: caller))))
                }
            } catch {
                outcomes.append(.answered(.failure(error)))
            }
        }
        return outcomes
    }
}
