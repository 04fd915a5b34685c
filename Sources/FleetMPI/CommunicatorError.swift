/// Why a ``Communicator`` operation failed.
///
/// FleetMPI's failure contract: when any rank dies, or throws out of its program, every other
/// rank's pending and future operations throw ``rankFailed(rank:reason:)`` naming it — never a
/// hang — and the launcher exits non-zero with the same message.
public enum CommunicatorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A rank died or failed; the whole job is going down.
    case rankFailed(rank: Int, reason: String)
    /// The operation waits on a rank that has already finished (called ``Communicator/finalize()``):
    /// no message from it can come.
    case rankFinished(rank: Int)
    /// The connection to the launcher (`fleet launch`) was lost.
    case launcherLost(String)
    /// The operation did not complete within the communicator's timeout.
    case timedOut(operation: String, after: Duration)
    /// A rank number outside `0..<size`.
    case invalidRank(Int, size: Int)
    /// A tag below zero (tags of user messages are `0...Int32.max`).
    case invalidTag(Int)
    /// A collective was called with arguments that do not fit (say, a scatter of 3 values on 4
    /// ranks).
    case invalidArgument(String)
    /// A message did not decode as the type asked for, or was too large for the buffer given.
    case malformedMessage(from: Int, String)
    /// The message is larger than the transport carries in one piece.
    case messageTooLarge(size: Int, limit: Int)
    /// The program was not started by a launcher, or its environment is incomplete.
    case notLaunched(String)
    /// The communicator was finalized: no more operations.
    case finalized

    public var description: String {
        switch self {
        case let .rankFailed(rank, reason): "rank \(rank) failed: \(reason)"
        case let .rankFinished(rank): "rank \(rank) has already finished; no message from it can arrive"
        case let .launcherLost(reason): "lost the launcher: \(reason)"
        case let .timedOut(operation, after): "\(operation) did not complete within \(after)"
        case let .invalidRank(rank, size): "rank \(rank) is outside 0..<\(size)"
        case let .invalidTag(tag): "tag \(tag) is negative; user tags are 0...\(Int32.max)"
        case let .invalidArgument(detail): "invalid argument: \(detail)"
        case let .malformedMessage(source, detail): "the message from rank \(source) does not fit: \(detail)"
        case let .messageTooLarge(size, limit): "a message of \(size) bytes is over the transport's limit of \(limit) bytes"
        case let .notLaunched(detail): "not started by a launcher: \(detail)"
        case .finalized: "the communicator was finalized"
        }
    }
}
