/// Why a job has no result, when the job's function did not throw it itself.
///
/// An error the function throws is rethrown by ``Job/value`` as it was thrown; Parallel Python
/// would have returned `None`.
public enum JobError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    /// The job did not finish within the timeout it was submitted with.
    case timedOut(after: Duration)
    /// The job was cancelled (``Job/cancel()``) before it finished.
    case cancelled
    /// The server was shut down before the job could start.
    case serverShutDown
    /// The worker process running the job died: how it ended (signal or exit status).
    case workerCrashed(String)
    /// No worker process could be started, and why.
    case workersUnavailable(String)
    /// A node cannot run this program (another operating system or architecture).
    case nodeIncompatible(String)

    public var description: String {
        switch self {
        case let .timedOut(after): "the job did not finish within \(after)"
        case .cancelled: "the job was cancelled"
        case .serverShutDown: "the job server was shut down before the job ran"
        case let .workerCrashed(reason): "the job's worker died: \(reason)"
        case let .workersUnavailable(reason): "no worker process is available: \(reason)"
        case let .nodeIncompatible(reason): "\(reason); build on a machine like the node, or with --static-swift-stdlib for other Linux distributions"
        }
    }
}
