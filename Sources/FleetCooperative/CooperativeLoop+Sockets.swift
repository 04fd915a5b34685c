#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CFleetCooperative
import NIOCore

extension CooperativeLoop {
    /// Opens a TCP socket listening on `host`:`port` (`SO_REUSEADDR` set).
    ///
    /// - Parameters:
    ///   - host: An IPv4 or IPv6 address literal. Default: loopback, `127.0.0.1`.
    ///   - port: The port; 0 lets the system choose one (read it from ``TCPListener/localPort``).
    ///   - backlog: The `listen` backlog.
    /// - Throws: ``SocketError`` (e.g. `EADDRINUSE`; `EINVAL` for a host that is not an address).
    public func listen(host: String = "127.0.0.1", port: Int, backlog: Int32 = 256) throws -> TCPListener {
        let address = try Descriptor.resolve(host: host, port: port)
        let fd = try Descriptor.socket(for: address, type: Int32(SOCK_STREAM.rawValue))
        Descriptor.setOption(fd, SOL_SOCKET, SO_REUSEADDR)
        do {
            try Descriptor.bind(fd, to: address)
            guard Glibc.listen(fd, backlog) == 0 else { throw SocketError(operation: "listen", errno: errno) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return TCPListener(core: try SocketCore(fd: fd, reactor: reactor))
    }

    /// Connects to `host`:`port` over TCP, suspending the task until the connection is made.
    ///
    /// - Parameters:
    ///   - host: An IPv4 or IPv6 address literal.
    ///   - timeout: How long to wait for the connection; nil waits as long as the system does.
    /// - Throws: ``Timeout``; ``SocketError`` (e.g. `ECONNREFUSED`); `CancellationError`.
    public func connect(host: String, port: Int, timeout: Duration? = nil) async throws -> TCPConnection {
        let address = try Descriptor.resolve(host: host, port: port)
        let fd = try Descriptor.socket(for: address, type: Int32(SOCK_STREAM.rawValue))
        Descriptor.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
        let core = try SocketCore(fd: fd, reactor: reactor)
        let result = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
        if result != 0 {
            guard errno == EINPROGRESS || errno == EINTR else {
                let code = errno
                core.close()
                throw SocketError(operation: "connect", errno: code)
            }
            core.registration.writable = false
            do {
                try await core.wait(.write, deadline: Reactor.deadline(after: timeout), timeout: timeout, operation: "connect")
            } catch {
                core.close()
                throw error
            }
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
            guard code == 0 else {
                core.close()
                throw SocketError(operation: "connect", errno: code)
            }
        }
        return TCPConnection(core: core)
    }

    /// Opens a UDP socket bound to `host`:`port`.
    ///
    /// - Parameters:
    ///   - host: An IPv4 or IPv6 address literal. Default: loopback, `127.0.0.1`.
    ///   - port: The port; 0 (the default) lets the system choose one.
    /// - Throws: ``SocketError``.
    public func udp(host: String = "127.0.0.1", port: Int = 0) throws -> UDPSocket {
        let address = try Descriptor.resolve(host: host, port: port)
        let fd = try Descriptor.socket(for: address, type: Int32(SOCK_DGRAM.rawValue))
        do {
            try Descriptor.bind(fd, to: address)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return UDPSocket(core: try SocketCore(fd: fd, reactor: reactor))
    }

    /// Suspends the task until `descriptor` is readable (data, end of file, or an error to read).
    ///
    /// For descriptors the loop does not own — a pipe, a terminal, another library's socket; the
    /// caller keeps owning it. (The sockets of the loop wait by themselves.)
    ///
    /// - Throws: ``Timeout``; ``SocketError`` (`EEXIST` for a socket of this loop, `EPERM` for a
    ///   descriptor epoll cannot watch, such as a regular file); `CancellationError`.
    public func readable(_ descriptor: Int32, timeout: Duration? = nil) async throws {
        try await wait(descriptor, .read, timeout: timeout)
    }

    /// Suspends the task until `descriptor` is writable; see ``readable(_:timeout:)``.
    ///
    /// - Throws: As ``readable(_:timeout:)``.
    public func writable(_ descriptor: Int32, timeout: Duration? = nil) async throws {
        try await wait(descriptor, .write, timeout: timeout)
    }

    private func wait(_ descriptor: Int32, _ direction: Direction, timeout: Duration?) async throws {
        let operation = direction == .read ? "readable" : "writable"
        guard !reactor.isRegistered(descriptor) else { throw SocketError(operation: operation, errno: EEXIST) }
        // Level-triggered, for just this wait: epoll reports a descriptor that is ready already.
        let events = direction == .read ? EPOLLIN.rawValue | EPOLLRDHUP.rawValue : EPOLLOUT.rawValue
        let registration = try reactor.register(descriptor, events: events)
        registration.readable = false
        registration.writable = false
        defer { reactor.forget(fd: descriptor, id: registration.id, removeFromEpoll: true) }
        try await reactor.waitUntilReady(
            registration, direction, deadline: Reactor.deadline(after: timeout), timeout: timeout, operation: operation)
    }
}
