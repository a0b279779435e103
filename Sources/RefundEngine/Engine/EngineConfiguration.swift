import RefundCore

/// How an engine is set up.
public struct EngineConfiguration: Sendable {
    /// Number of partitions (actors). Default: the active processor count.
    public var partitions: Int
    public var retryPolicy: RetryPolicy
    /// Customer self-service refunds close this many hours before the event starts.
    public var selfServiceCutoffHours: Int64
    /// Gateway requests per batch call.
    public var gatewayBatchSize: Int
    /// Orders a partition processes between two progress updates of a bulk job.
    public var bulkChunkSize: Int
    /// How fast the gateway may be called (``GatewayLimits``); unlimited by default.
    public var gatewayLimits: GatewayLimits

    public init(
        partitions: Int = EngineConfiguration.activeProcessorCount, retryPolicy: RetryPolicy = RetryPolicy(),
        selfServiceCutoffHours: Int64 = 24, gatewayBatchSize: Int = 4096, bulkChunkSize: Int = 4096,
        gatewayLimits: GatewayLimits = .unlimited
    ) {
        self.partitions = max(1, partitions)
        self.retryPolicy = retryPolicy
        self.selfServiceCutoffHours = selfServiceCutoffHours
        self.gatewayBatchSize = max(1, gatewayBatchSize)
        self.bulkChunkSize = max(1, bulkChunkSize)
        self.gatewayLimits = gatewayLimits
    }

    public static var activeProcessorCount: Int {
        #if canImport(Glibc)
            return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
            return 4
        #endif
    }
}

#if canImport(Glibc)
    import Glibc
#endif
