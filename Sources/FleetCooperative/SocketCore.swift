#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What every socket of a loop shares: its descriptor, its epoll registration, and closing.
/// Loop thread only (its owners are non-`Sendable` and created on the loop).
final class SocketCore {
    let reactor: Reactor
    let registration: Registration
    @exclusivity(unchecked) private(set) var isClosed = false

    var fd: Int32 { registration.fd }

    /// Registers `fd` (which the core then owns) with `reactor`; closes it if that fails.
    init(fd: Int32, reactor: Reactor) throws(SocketError) {
        self.reactor = reactor
        do {
            registration = try reactor.register(fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit {
        guard !isClosed else { return }
        // The owner went away without close(): release the descriptor. A deinit may run off the
        // loop thread, so the registration is dropped there, by id (a new socket may reuse fd).
        let fd = registration.fd, id = registration.id
        Glibc.close(fd)
        reactor.execute { [reactor] in reactor.forget(fd: fd, id: id, removeFromEpoll: false) }
    }

    /// Closes the descriptor; waits in progress end with ``SocketError/closed(_:)``.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        reactor.deregister(registration, failingWaitersWith: SocketError.closed("wait"))
        Glibc.close(registration.fd)
    }

    /// Throws ``SocketError/closed(_:)`` when the socket is closed.
    @inline(__always)
    func checkOpen(_ operation: String) throws(SocketError) {
        if isClosed { throw SocketError.closed(operation) }
    }

    /// Waits for readiness; closes the socket if the task is cancelled meanwhile.
    func wait(_ direction: Direction, deadline: UInt64?, timeout: Duration?, operation: String) async throws {
        do {
            try await reactor.waitUntilReady(registration, direction, deadline: deadline, timeout: timeout, operation: operation)
        } catch is CancellationError {
            close()
            throw CancellationError()
        }
    }
}
