#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CFleetWire
import NIOCore
import Synchronization

/// The sockets of the Fleet connections on one event loop, in an epoll set of their own, for
/// ``BusyPoll``: one non-blocking `epoll_wait` tells whether any of them has data.
///
/// NIO's own epoll set stays untouched: this one is only ever polled with a zero timeout, so no
/// thread sleeps on it and data arriving on its sockets wakes nobody. A socket leaves the set by
/// itself when it is closed. The set lives while a connection on its loop is registered.
package final class LoopSockets: Sendable {
    private let epollDescriptor: CInt
    /// The event loop's key in ``registry``.
    private let key: ObjectIdentifier
    /// How many connections use the set; changed under ``registry``'s lock.
    private let users = Atomic<Int>(0)

    /// The sets, by event loop.
    private static let registry = Mutex<[ObjectIdentifier: LoopSockets]>([:])

    private init?(key: ObjectIdentifier) {
        self.key = key
        epollDescriptor = epoll_create1(CInt(EPOLL_CLOEXEC))
        guard epollDescriptor >= 0 else { return nil }
    }

    deinit {
        close(epollDescriptor)
    }

    /// Adds `descriptor` to the set of `loop`'s sockets; `nil` when the set cannot be made or
    /// the socket cannot join it.
    static func register(_ descriptor: CInt, on loop: any EventLoop) -> LoopSockets? {
        registry.withLock { sets -> LoopSockets? in
            let key = ObjectIdentifier(loop)
            guard let sockets = sets[key] ?? LoopSockets(key: key) else { return nil }
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
            event.data.fd = descriptor
            guard epoll_ctl(sockets.epollDescriptor, EPOLL_CTL_ADD, descriptor, &event) == 0 || errno == EEXIST else {
                return nil
            }
            sets[key] = sockets
            sockets.users.add(1, ordering: .relaxed)
            return sockets
        }
    }

    /// A connection no longer uses the set; the last one closes it.
    func unregister() {
        Self.registry.withLock { sets in
            guard users.subtract(1, ordering: .relaxed).newValue == 0, sets[key] === self else { return }
            sets[key] = nil
        }
    }

    /// How many sockets connections have registered in the set and not unregistered yet (one
    /// closed meanwhile has left it by itself).
    var count: Int { users.load(ordering: .relaxed) }

    /// Whether a socket of the set has data (or was closed by its peer), without waiting.
    func hasData() -> Bool {
        var event = epoll_event()
        return epoll_wait(epollDescriptor, &event, 1, 0) > 0
    }
}
