@testable import RefundServer

/// RefundServer's `Operation`, under a name that Foundation's `Operation` does not make ambiguous in test files
/// that import Foundation.
typealias ServerOperation = Operation
