#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// A connected TCP socket of a ``CooperativeLoop``: accepted by ``TCPListener/accept(timeout:)``
/// or made by ``CooperativeLoop/connect(host:port:timeout:)``.
///
/// Its operations suspend the calling task, never the loop's thread. It belongs to the loop that
/// made it: it is not `Sendable`, so only that loop's tasks use it. `TCP_NODELAY` is set.
public final class TCPConnection {
    let core: SocketCore

    init(core: SocketCore) {
        self.core = core
    }

    /// The local address of the connection.
    public var localAddress: SocketAddress? { Descriptor.address(of: core.fd) }

    /// The address of the peer.
    public var remoteAddress: SocketAddress? { Descriptor.address(of: core.fd, peer: true) }

    /// Whether the connection is closed (by ``close()`` or by cancellation of a task waiting on it).
    public var isClosed: Bool { core.isClosed }

    /// The descriptor, for socket options; the connection still owns it.
    public var descriptor: Int32 { core.fd }

    /// Receives up to `max` bytes, waiting until some arrive: `multitask.recv(sock, max)`.
    ///
    /// - Parameters:
    ///   - max: The most bytes to return; at least 1.
    ///   - timeout: How long to wait for data; nil waits until some arrives.
    /// - Returns: The bytes received, or an empty array when the peer has closed its side.
    /// - Throws: ``Timeout``; ``SocketError`` (`ECONNRESET` when the peer reset the connection,
    ///   ``SocketError/closed(_:)`` after ``close()``); `CancellationError`, after closing the
    ///   connection, if the task is cancelled.
    public func recv(max: Int, timeout: Duration? = nil) async throws -> [UInt8] {
        precondition(max > 0, "recv(max:) needs max > 0")
        var bytes = [UInt8](repeating: 0, count: max)
        let count = try await recv(into: &bytes, timeout: timeout)
        bytes.removeLast(max - count)
        return bytes
    }

    /// Receives into `buffer` (up to its count), waiting until some bytes arrive; returns how many
    /// were written at its start, 0 when the peer has closed its side. The allocation-free form of
    /// ``recv(max:timeout:)``.
    ///
    /// - Throws: As ``recv(max:timeout:)``.
    public func recv(into buffer: inout [UInt8], timeout: Duration? = nil) async throws -> Int {
        let deadline = Reactor.deadline(after: timeout)
        let registration = core.registration
        while true {
            try core.checkOpen("recv")
            if registration.readable {
                let count = buffer.withUnsafeMutableBytes { Glibc.recv(core.fd, $0.baseAddress, $0.count, 0) }
                if count >= 0 {
                    // Edge-triggered: a short read emptied the kernel buffer; the next arrival
                    // raises a new edge.
                    if count < buffer.count { registration.readable = false }
                    return count
                }
                switch errno {
                case EAGAIN, EWOULDBLOCK: registration.readable = false
                case EINTR: continue
                case let code: throw SocketError(operation: "recv", errno: code)
                }
            }
            try await core.wait(.read, deadline: deadline, timeout: timeout, operation: "recv")
        }
    }

    /// Sends every byte of `bytes`, waiting whenever the kernel's send buffer is full:
    /// `multitask.send(sock, data)`.
    ///
    /// - Parameter timeout: How long the whole send may take; nil waits as long as it needs. On a
    ///   timeout some of the bytes may have been sent.
    /// - Throws: ``Timeout``; ``SocketError`` (`EPIPE` or `ECONNRESET` when the peer has gone);
    ///   `CancellationError`, after closing the connection, if the task is cancelled.
    public func send(_ bytes: [UInt8], timeout: Duration? = nil) async throws {
        try await send(bytes[...], timeout: timeout)
    }

    /// Sends every byte of `bytes`; see ``send(_:timeout:)``.
    ///
    /// - Throws: As ``send(_:timeout:)``.
    public func send(_ bytes: ArraySlice<UInt8>, timeout: Duration? = nil) async throws {
        let deadline = Reactor.deadline(after: timeout)
        let registration = core.registration
        var offset = 0
        while offset < bytes.count {
            try core.checkOpen("send")
            if registration.writable {
                let count = bytes.withUnsafeBytes {
                    Glibc.send(core.fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
                }
                if count >= 0 {
                    offset += count
                    if offset < bytes.count { registration.writable = false }
                    continue
                }
                switch errno {
                case EAGAIN, EWOULDBLOCK: registration.writable = false
                case EINTR: continue
                case let code: throw SocketError(operation: "send", errno: code)
                }
            }
            try await core.wait(.write, deadline: deadline, timeout: timeout, operation: "send")
        }
    }

    /// Sends the UTF-8 bytes of `text`.
    ///
    /// - Throws: As ``send(_:timeout:)``.
    public func send(_ text: String, timeout: Duration? = nil) async throws {
        try await send(Array(text.utf8), timeout: timeout)
    }

    /// Closes the sending side (`shutdown(SHUT_WR)`): the peer's next receive returns end of file,
    /// and this side can still receive.
    public func shutdownWrite() throws {
        try core.checkOpen("shutdown")
        guard Glibc.shutdown(core.fd, Int32(SHUT_WR)) == 0 else { throw SocketError(operation: "shutdown", errno: errno) }
    }

    /// Closes the connection; operations waiting on it throw ``SocketError/closed(_:)``.
    public func close() {
        core.close()
    }
}
