#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call on a socket or descriptor of a ``CooperativeLoop``, or an operation on a
/// socket that is closed.
///
/// The error belongs to the one operation that failed: the loop and its other tasks carry on. A
/// peer that resets the connection shows up here as `ECONNRESET` (or `EPIPE` on a send).
public struct SocketError: Error, Hashable, CustomStringConvertible {
    /// The operation or system call that failed, e.g. `"connect"`.
    public var operation: String
    /// The `errno` value; `EBADF` for an operation on a socket that was closed.
    public var errno: Int32

    /// Creates the error for `operation`, which failed with `errno`.
    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// An operation on a socket that was closed (by ``TCPConnection/close()``, by cancellation of
    /// the task that waited on it, or by its peer's reset).
    public static func closed(_ operation: String) -> SocketError {
        SocketError(operation: operation, errno: EBADF)
    }

    /// Whether this is the error of an operation on a closed socket.
    public var isClosed: Bool { errno == EBADF }

    /// `"connect failed: Connection refused (errno 111)"`.
    public var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
