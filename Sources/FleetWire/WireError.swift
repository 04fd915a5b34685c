/// A violation of Fleet's wire protocol, or a connection that ended.
///
/// A connection that meets one of these is closed; the server and its other connections keep
/// running. Where it can, the side that found the problem tells the other in an error frame,
/// which arrives there as ``closedByPeer(reason:)``.
public enum WireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A frame announced a payload larger than the connection's limit.
    case frameTooLarge(size: Int, limit: Int)
    /// A frame's kind byte names no ``Frame/Kind``.
    case unknownFrameKind(UInt8)
    /// The connection ended in the middle of a frame.
    case truncatedFrame(received: Int, expected: Int)
    /// A frame arrived that the protocol does not allow at this point.
    case unexpectedFrame(Frame.Kind, expected: String)
    /// A frame's payload could not be decoded as what its kind requires.
    case malformedPayload(Frame.Kind, String)
    /// The peer reported a protocol error and closed the connection.
    case closedByPeer(reason: String)
    /// The connection closed.
    case connectionClosed

    public var description: String {
        switch self {
        case let .frameTooLarge(size, limit):
            return "frame of \(size) bytes exceeds the limit of \(limit) bytes"
        case let .unknownFrameKind(byte):
            return "unknown frame kind \(byte) (not a Fleet peer, or a newer protocol)"
        case let .truncatedFrame(received, expected):
            return "connection closed mid-frame: received \(received) of \(expected) bytes"
        case let .unexpectedFrame(kind, expected):
            return "unexpected \(kind) frame; expected \(expected)"
        case let .malformedPayload(kind, detail):
            return "malformed \(kind) frame: \(detail)"
        case let .closedByPeer(reason):
            return "peer closed the connection: \(reason)"
        case .connectionClosed:
            return "connection closed"
        }
    }
}
