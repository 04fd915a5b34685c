#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CFleetCooperative
import NIOCore

/// A listening TCP socket of a ``CooperativeLoop``; made by ``CooperativeLoop/listen(host:port:backlog:)``.
///
/// It belongs to the loop that made it: it is not `Sendable`, so only that loop's tasks use it.
public final class TCPListener {
    let core: SocketCore

    init(core: SocketCore) {
        self.core = core
    }

    /// The address the listener is bound to (with the port the system chose for port 0).
    public var localAddress: SocketAddress? { Descriptor.address(of: core.fd) }

    /// The port the listener is bound to.
    public var localPort: Int { localAddress?.port ?? 0 }

    /// Whether ``close()`` was called (or a cancelled ``accept(timeout:)`` closed it).
    public var isClosed: Bool { core.isClosed }

    /// Waits for the next connection and returns it: `multitask.accept(sock)`.
    ///
    /// - Parameter timeout: How long to wait; nil waits until a connection arrives.
    /// - Throws: ``Timeout``; ``SocketError`` (``SocketError/closed(_:)`` after ``close()``);
    ///   `CancellationError`, after closing the listener, if the task is cancelled.
    public func accept(timeout: Duration? = nil) async throws -> TCPConnection {
        let deadline = Reactor.deadline(after: timeout)
        while true {
            try core.checkOpen("accept")
            let fd = cfleet_accept4(core.fd, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            if fd >= 0 {
                Descriptor.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
                return TCPConnection(core: try SocketCore(fd: fd, reactor: core.reactor))
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK: core.registration.readable = false
            case EINTR, ECONNABORTED, EPROTO: continue
            case let code: throw SocketError(operation: "accept", errno: code)
            }
            try await core.wait(.read, deadline: deadline, timeout: timeout, operation: "accept")
        }
    }

    /// Stops listening and closes the socket; a waiting ``accept(timeout:)`` throws
    /// ``SocketError/closed(_:)``.
    public func close() {
        core.close()
    }
}
