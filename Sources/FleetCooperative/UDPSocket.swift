#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// A UDP socket of a ``CooperativeLoop``; made by ``CooperativeLoop/udp(host:port:)``.
///
/// It belongs to the loop that made it: it is not `Sendable`, so only that loop's tasks use it.
public final class UDPSocket {
    let core: SocketCore

    init(core: SocketCore) {
        self.core = core
    }

    /// The address the socket is bound to (with the port the system chose for port 0).
    public var localAddress: SocketAddress? { Descriptor.address(of: core.fd) }

    /// The port the socket is bound to.
    public var localPort: Int { localAddress?.port ?? 0 }

    /// Whether ``close()`` was called (or a cancelled wait closed it).
    public var isClosed: Bool { core.isClosed }

    /// Receives one datagram of up to `max` bytes (a longer one is cut to `max`), waiting until
    /// one arrives.
    ///
    /// - Parameter timeout: How long to wait; nil waits until a datagram arrives.
    /// - Returns: The datagram's bytes and its sender.
    /// - Throws: ``Timeout``; ``SocketError``; `CancellationError`, after closing the socket.
    public func recvfrom(max: Int, timeout: Duration? = nil) async throws -> (bytes: [UInt8], from: SocketAddress) {
        precondition(max > 0, "recvfrom(max:) needs max > 0")
        let deadline = Reactor.deadline(after: timeout)
        var bytes = [UInt8](repeating: 0, count: max)
        while true {
            try core.checkOpen("recvfrom")
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = bytes.withUnsafeMutableBytes { buffer in
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.recvfrom(core.fd, buffer.baseAddress, buffer.count, 0, $0, &length)
                    }
                }
            }
            if count >= 0, let sender = Descriptor.address(from: storage) {
                bytes.removeLast(max - count)
                return (bytes, sender)
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK: core.registration.readable = false
            case EINTR: continue
            case let code where count < 0: throw SocketError(operation: "recvfrom", errno: code)
            default: continue  // a datagram from an address family we do not report
            }
            try await core.wait(.read, deadline: deadline, timeout: timeout, operation: "recvfrom")
        }
    }

    /// Sends `bytes` as one datagram to `address`, waiting if the send buffer is full.
    ///
    /// - Throws: ``Timeout``; ``SocketError`` (e.g. `EMSGSIZE` for a datagram that is too long);
    ///   `CancellationError`, after closing the socket.
    public func sendto(_ bytes: [UInt8], to address: SocketAddress, timeout: Duration? = nil) async throws {
        let deadline = Reactor.deadline(after: timeout)
        while true {
            try core.checkOpen("sendto")
            let count = bytes.withUnsafeBytes { buffer in
                address.withSockAddr { Glibc.sendto(core.fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, socklen_t($1)) }
            }
            if count >= 0 { return }
            switch errno {
            case EAGAIN, EWOULDBLOCK: core.registration.writable = false
            case EINTR: continue
            case let code: throw SocketError(operation: "sendto", errno: code)
            }
            try await core.wait(.write, deadline: deadline, timeout: timeout, operation: "sendto")
        }
    }

    /// Closes the socket; operations waiting on it throw ``SocketError/closed(_:)``.
    public func close() {
        core.close()
    }
}
