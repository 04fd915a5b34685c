#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// One connection's busy poll: before its event loop goes to sleep waiting for the peer's next
/// message, the loop polls its sockets for up to a budget, when the last waits suggest the
/// message will come within it.
///
/// A loop that sleeps in `epoll_wait` is woken by an interrupt from the processor that sent it
/// the data. On virtual machines each such wake-up costs tens of microseconds, on the sender
/// and on the receiver: more than a short request and its reply take. A loop still polling
/// when the data arrives needs no wake-up at all. Measured with `fleet bench rpc` on a 2-core
/// VM, a trivial remote call takes about 90 µs with both loops sleeping and about 22 µs with
/// both polling.
///
/// The poll costs processor time, so it runs only when a message is expected soon:
/// - the owner calls ``waitStarted()`` when it starts waiting for the peer (a call sent, a
///   reply sent) and ``waitEnded()`` when the peer's message arrives;
/// - ``shouldPoll()`` holds when the last wait ended within the budget, and on every 16th wait
///   otherwise, so that a connection whose peer has become quick again is noticed;
/// - for ``pollSoon(on:until:)``, it does not hold either after polls that found data (or
///   queued work) at once, twice in a row or more: the loop is busy, and polling would only add
///   a system call to each of its turns (every 16th wait polls all the same, to notice when the
///   loop has become idle). A wait that calls ``poll(until:)`` itself (FleetMPI's) is not
///   counted so: a message already there when a rank starts waiting is no sign of a busy loop.
///
/// A poll that expects its message on one connection reads that socket itself
/// (``SocketReader``): the message goes through the pipeline within the poll, with one system
/// call, and the loop need not learn of it from `epoll_wait` first. Measured with
/// `fleet bench rpc` on the same VM, a remote call made on the loop went from about 17 µs to
/// about 14 µs so.
///
/// The sockets of all Fleet connections on one event loop share one epoll set
/// (``LoopSockets``): polling for one connection ends when any of them has data, so a loop
/// that serves several peers keeps serving all of them. Work queued on the loop through any
/// ``EventLoopTaskExecutor`` of it (``LoopWork``) ends the poll too, when the owner's `done`
/// condition asks ``EventLoopTaskExecutor/hasQueuedWork``.
///
/// Not thread-safe: every method runs on the connection's event loop.
package final class BusyPoll {
    /// The set of the loop's sockets this poll registered with.
    let sockets: LoopSockets
    private let budget: TimeAmount
    /// How many sockets this poll registered with the set.
    private let registered: Int
    private var waitStart: NIODeadline?
    private var lastWait: TimeAmount = .zero
    /// How many polls of ``pollSoon(on:until:)`` in a row ended on their first look.
    private var busyPolls = 0
    private var skipped = 0
    private var scheduled = false
    private var released = false
    /// The reader of the connection's socket, for a poll of one connection: its polls read the
    /// socket themselves (``poll(reading:until:)``).
    private var reader: SocketReader?

    /// Polling starts on the 16th wait at the latest, even after long waits.
    static let probeInterval = 16

    /// Registers `channel`'s socket with its event loop's set; `nil` when `budget` is zero or
    /// the channel has no socket that can be found (an embedded or in-memory channel).
    ///
    /// Call on the channel's event loop, once the channel is active.
    package convenience init?(channel: any Channel, budget: Duration) {
        self.init(channels: [channel], on: channel.eventLoop, budget: budget)
        reader = SocketReader(channel: channel, sizes: AdaptiveRecvByteBufferAllocator())
    }

    /// Registers the sockets of `channels`, which all run on `loop`, with its set: for a wait
    /// that any of them may end. `nil` when `budget` is zero or no socket could be registered.
    ///
    /// Call on `loop`, once the channels are active.
    package init?(channels: [any Channel], on loop: any EventLoop, budget: Duration) {
        guard budget > .zero else { return nil }
        var sockets: LoopSockets?
        var registered = 0
        for channel in channels {
            guard channel.eventLoop === loop, let descriptor = Self.socketDescriptor(of: channel),
                  let set = LoopSockets.register(descriptor, on: loop)
            else { continue }
            sockets = set
            registered += 1
        }
        guard let sockets else { return nil }
        self.sockets = sockets
        self.registered = registered
        self.budget = TimeAmount(budget)
    }

    /// The connection started waiting for the peer (at `now`).
    package func waitStarted(at now: NIODeadline = .now()) {
        waitStart = now
    }

    /// The peer's message arrived: remembers how long the wait took.
    package func waitEnded() {
        guard let start = waitStart else { return }
        waitStart = nil
        lastWait = .now() - start
    }

    /// Whether the loop should poll before it sleeps: the last wait ended within the budget and
    /// the loop is not busy, or it is time for a probe.
    package func shouldPoll() -> Bool {
        if lastWait <= budget, busyPolls < 2 {
            skipped = 0
            return true
        }
        skipped += 1
        if skipped >= Self.probeInterval {
            skipped = 0
            return true
        }
        return false
    }

    /// Polls once the loop has run what it has queued, when ``shouldPoll()`` holds: until a
    /// socket of the loop's set has data, `done` holds, or the budget has passed. A poll of one
    /// connection reads its socket itself, and ends after the first read that brings data.
    ///
    /// A loop that has data or work at its first look is busy, and then polling would only add a
    /// system call to each of its turns: after two such looks in a row, ``shouldPoll()`` holds
    /// only for a probe.
    package func pollSoon(on loop: any EventLoop, until done: @escaping () -> Bool = { false }) {
        guard !scheduled, !released, shouldPoll() else { return }
        scheduled = true
        loop.assumeIsolated().execute {
            self.scheduled = false
            guard !self.released else { return }
            if done() || self.sockets.hasData() {
                self.busyPolls += 1
                return
            }
            self.busyPolls = 0
            if let reader = self.reader {
                // Until a read: what it brought is the peer's message, or its start.
                let reads = reader.reads
                self.poll(reading: reader, until: { done() || reader.reads != reads })
            } else {
                self.poll(until: done)
            }
        }
    }

    /// Polls the loop's sockets until one has data, `done` holds, or the budget has passed.
    ///
    /// - Returns: whether data arrived or `done` held before the budget ran out.
    @discardableResult
    package func poll(until done: () -> Bool) -> Bool {
        guard !released else { return false }
        return poll(until: done, before: deadline(for: nil))
    }

    /// ``poll(until:)`` until `deadline`.
    private func poll(until done: () -> Bool, before deadline: NIODeadline) -> Bool {
        var turns = 0
        while true {
            if done() || sockets.hasData() { return true }
            turns &+= 1
            if turns & 7 == 0 {
                if NIODeadline.now() >= deadline { return false }
                // A thread of this process that has work gets the processor meanwhile.
                sched_yield()
            }
        }
    }

    /// Polls like ``poll(until:)`` for a wait that expects its message on `reader`'s connection:
    /// reads that socket itself, handing what arrives to its pipeline, until `done` holds or the
    /// budget has passed. Every eighth turn it also asks the loop's set, and ends when another
    /// of its sockets has data, so that the loop goes on serving every connection.
    ///
    /// - Parameter limit: a budget shorter than the poll's own, if any.
    /// - Returns: whether `done` held, or another socket had data, before the budget ran out.
    @discardableResult
    package func poll(reading reader: SocketReader, for limit: Duration? = nil, until done: () -> Bool) -> Bool {
        guard !released else { return false }
        reader.recheck()
        let deadline = deadline(for: limit)
        var turns = 0
        while true {
            switch reader.read() {
            case .read: if done() { return true }
            case .empty: break
            // Left to NIO: a socket that ended shows in the set (within the same deadline).
            case .ended: return done() || poll(until: done, before: deadline)
            }
            turns &+= 1
            if turns & 7 == 0 {
                // Another socket has data, unless it is this one's, come in meanwhile.
                if sockets.count > 1, sockets.hasData(), reader.read() != .read { return true }
                if done() { return true }
                if NIODeadline.now() >= deadline { return false }
                sched_yield()
            }
        }
    }

    /// When a poll that starts now ends: after the budget, or `limit` when shorter.
    private func deadline(for limit: Duration?) -> NIODeadline {
        NIODeadline.now() + (limit.map { min(TimeAmount($0), budget) } ?? budget)
    }

    deinit {
        release()
    }

    /// Takes the socket out of the loop's set. Call when the channel closes (or its handler is
    /// removed); later calls do nothing, and a poll after it returns at once.
    package func release() {
        guard !released else { return }
        released = true
        for _ in 0..<registered { sockets.unregister() }
    }

    /// The descriptor of `channel`'s socket, checked against the channel's own addresses.
    ///
    /// NIO keeps the descriptor to itself; a socket channel names it in its description
    /// (`SocketChannel { BaseSocket { fd=12 }, … }`). The descriptor is used only when
    /// `getsockname` and `getpeername` on it give the channel's local and remote addresses, so a
    /// description in another format, or a descriptor number taken over by another socket,
    /// turns polling off instead of polling the wrong socket.
    static func socketDescriptor(of channel: any Channel) -> CInt? {
        let description = "\(channel)"
        guard let marker = description.range(of: "fd="),
              let local = channel.localAddress, let remote = channel.remoteAddress
        else { return nil }
        let digits = description[marker.upperBound...].prefix { $0.isASCII && $0.isNumber }
        guard let descriptor = CInt(digits), descriptor >= 0,
              address(of: descriptor, peer: false) == local, address(of: descriptor, peer: true) == remote
        else { return nil }
        return descriptor
    }

    private static func address(of descriptor: CInt, peer: Bool) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(descriptor, $0, &length) : getsockname(descriptor, $0, &length)
            }
        }
        guard result == 0 else { return nil }
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: &storage) { raw -> SocketAddress? in
            switch family {
            case AF_INET:
                let address = raw.load(as: sockaddr_in.self)
                return SocketAddress(address, host: "")
            case AF_INET6:
                let address = raw.load(as: sockaddr_in6.self)
                return SocketAddress(address, host: "")
            default:
                return nil
            }
        }
    }
}
