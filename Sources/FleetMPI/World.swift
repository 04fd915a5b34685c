import FleetWire
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One rank's part of a job: its links to the other ranks (``RankLinks``), its ``Mailbox``, the
/// event loop that runs its I/O and its operations, and its link to the launcher. Every
/// ``Communicator`` of the rank shares it.
final class World: Sendable {
    let rank: Int
    let size: Int
    let mailbox: Mailbox
    /// The rank's one event loop: connections read on it, and operations run on it, so that a
    /// message wakes the receive that waits for it without a thread hop.
    let executor: EventLoopTaskExecutor
    let timeout: Duration?
    /// The loop's group, held for the rank's life (see ``finalize(failure:timeout:)``).
    private let group: MultiThreadedEventLoopGroup?
    private let links: RankLinks
    /// The polled links again, for the calls made on every message (``write(context:tag:body:to:)``,
    /// ``receiveDirectly(from:context:tag:take:)``): by their concrete type, and unmanaged, so
    /// that such a call counts no reference and goes through no witness table (`links` holds
    /// them as long as the world lives).
    private let direct: DirectLinks?

    private enum DirectLinks {
        case sharedMemory(Unmanaged<SharedMemoryLinks>)
        case library(Unmanaged<LibraryLinks>)
    }
    /// Over TCP: how the rank writes to its connections and polls them, on its loop.
    private let tcp: NIOLoopBound<TCPLinks>?
    /// Whether the world runs on an MPI library (which starts, ends and aborts the job), whether
    /// or not its messages travel through it.
    let usesLibrary: Bool
    private let launcher: LauncherLink?
    private let logger: Logger
    private let state = Mutex(State())
    /// Whether ``finalize(failure:timeout:)`` has begun: read by every operation, set once.
    private let finalizing = Atomic<Bool>(false)

    /// The largest message one frame carries between ranks.
    static let maximumMessageSize = 1 << 30

    /// Reads of up to 1 MiB, so that large messages (collectives on big arrays) arrive in few
    /// reads; small ones still get small buffers.
    static var receiveBuffers: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1 << 10, initial: 16 << 10, maximum: 1 << 20)
    }

    private struct State {
        var finalized = false
        /// Ranks whose goodbye (or closed connection) finalize still waits for.
        var goodbyesMissing: Set<Int> = []
        var goodbyeWaiter: CheckedContinuation<Void, Never>?
    }

    /// A world over `links`, as a join makes it (World+Join.swift).
    init(
        rank: Int, size: Int, mailbox: Mailbox, executor: EventLoopTaskExecutor, timeout: Duration?,
        group: MultiThreadedEventLoopGroup?, links: RankLinks, tcp: NIOLoopBound<TCPLinks>? = nil,
        usesLibrary: Bool = false, launcher: LauncherLink?, logger: Logger
    ) {
        self.rank = rank
        self.size = size
        self.mailbox = mailbox
        self.executor = executor
        self.timeout = timeout
        self.group = group
        self.links = links
        switch links {
        case let .polled(links as SharedMemoryLinks): self.direct = .sharedMemory(.passUnretained(links))
        case let .polled(links as LibraryLinks): self.direct = .library(.passUnretained(links))
        default: self.direct = nil
        }
        self.tcp = tcp
        self.usesLibrary = usesLibrary
        self.launcher = launcher
        self.logger = logger
        state.withLock { $0.goodbyesMissing = Set((0..<size).filter { $0 != rank }) }
    }

    /// Whether the library's own barrier and allreduce serve the world communicator: on a
    /// library whose messages travel through it (not through rings, which only FleetMPI's own
    /// collectives drive while they wait).
    var usesLibraryCollectives: Bool { usesLibrary && !usesNodeRings }

    /// Whether the world runs on an MPI library and its messages travel through rings in the
    /// library's shared window (``joinLibrary(timeout:logger:)``).
    var usesNodeRings: Bool {
        if usesLibrary, case .sharedMemory = direct { true } else { false }
    }

    // MARK: Sending

    /// Sends one message to a world rank. Small messages are handed to the connection and the
    /// call returns; large ones return once written (backpressure).
    nonisolated(nonsending) func transmit(_ data: ByteBuffer, to destination: Int) async throws {
        try await settle(try write(data, to: destination), size: data.readableBytes, to: destination)
    }

    /// Waits for `written`, a message of `size` bytes, when it is large (backpressure); a small
    /// one is left to go on its own.
    nonisolated(nonsending) func settle(_ written: EventLoopFuture<Void>?, size: Int, to destination: Int) async throws {
        guard let written, size >= Self.settledSize else { return }
        try await completion(of: written, to: destination)
    }

    /// The size (header included) from which a send waits until its message is written.
    static let settledSize = 1 << 16

    /// Throws when no message of `size` bytes (header included) may leave: the job failed, or
    /// it is over the transports' limit.
    ///
    /// Checked on every message: the common case is one atomic load and a comparison, inline.
    @inline(__always)
    private func checkWritable(size: Int) throws(CommunicatorError) {
        if mailbox.hasFailed.load(ordering: .acquiring) || size > Self.maximumMessageSize { try throwUnwritable(size: size) }
    }

    @inline(never)
    private func throwUnwritable(size: Int) throws(CommunicatorError) {
        if let failure = mailbox.failure { throw failure }
        guard size <= Self.maximumMessageSize else {
            throw .messageTooLarge(size: size - RankMessageHeader.size, limit: Self.maximumMessageSize - RankMessageHeader.size)
        }
    }

    /// Hands one message (a buffer from ``messageBuffer(context:tag:capacity:)``) to the
    /// connection to `destination` at once, or to this rank's own mailbox: messages leave in the
    /// order written. A write that is not `tracked` returns no future over TCP, on the loop
    /// (for a caller that would not wait for it).
    ///
    /// - Returns: the write, or `nil` for a message to this rank (or one not tracked).
    func write(_ data: consuming ByteBuffer, to destination: Int, tracked: Bool = true) throws -> EventLoopFuture<Void>? {
        if destination == rank {
            if let failure = mailbox.failure { throw failure }
            var body = data
            if let header = RankMessageHeader.read(from: &body) {
                mailbox.deliver(RankMessage(context: header.context, source: rank, tag: header.tag, data: body))
            }
            return nil
        }
        try checkWritable(size: data.readableBytes)
        switch links {
        case let .tcp(channels):
            guard let channel = channels[destination] else { throw CommunicatorError.invalidRank(destination, size: size) }
            // On the loop straight to the encoder's socket side, past the pipeline's tail.
            if let tcp, isOnLoop, let writer = tcp.value.writers[destination] {
                let promise = tracked ? channel.eventLoop.makePromise(of: Void.self) : nil
                writer.writeAndFlush(.rankMessage, payload: data, promise: promise)
                return promise?.futureResult
            }
            return channel.writeAndFlush(Frame(kind: .rankMessage, payload: data))
        case let .polled(links):
            let loop = executor.eventLoop
            let data = copy data
            if loop.inEventLoop { return links.write(data, to: destination) }
            return loop.flatSubmit { links.write(data, to: destination) ?? loop.makeSucceededVoidFuture() }
        }
    }

    /// Hands a message of `context` and `tag` whose body is `body` (read now) to the link to
    /// `destination`: over shared memory straight from `body`'s memory as far as the ring has
    /// room, elsewhere as ``write(_:to:)`` does with a buffer.
    ///
    /// - Returns: the write, or `nil` once it is written (or for a message to this rank).
    func write(context: UInt64, tag: Int32, body: UnsafeRawBufferPointer, to destination: Int) throws -> EventLoopFuture<Void>? {
        if isOnLoop { return try writeOnLoop(context: context, tag: tag, body: body, to: destination) }
        return try write(RankMessageHeader.message(context: context, tag: tag, body: body), to: destination)
    }

    /// ``write(context:tag:body:to:)`` for a caller on the loop; one that would not wait for the
    /// write asks for it not to be `tracked` (see ``write(_:to:tracked:)``).
    @inline(__always)
    func writeOnLoop(
        context: UInt64, tag: Int32, body: UnsafeRawBufferPointer, to destination: Int, tracked: Bool = true
    ) throws -> EventLoopFuture<Void>? {
        assert(isOnLoop)
        if let direct, destination != rank {
            try checkWritable(size: RankMessageHeader.size + body.count)
            switch direct {
            case let .sharedMemory(links):
                return links._withUnsafeGuaranteedRef { $0.write(context: context, tag: tag, body: body, to: destination) }
            case let .library(links):
                return links._withUnsafeGuaranteedRef { $0.write(context: context, tag: tag, body: body, to: destination) }
            }
        }
        return try write(RankMessageHeader.message(context: context, tag: tag, body: body), to: destination, tracked: tracked)
    }

    /// Waits for a write; a failed one is the job's failure, or the destination's.
    nonisolated(nonsending) func completion(of written: EventLoopFuture<Void>, to destination: Int) async throws {
        do {
            if case .polled = links {
                let done = WriteDone()
                written.whenComplete { _ in done.value.store(true, ordering: .releasing) }
                _ = try await wait(until: { done.value.load(ordering: .acquiring) }) { try await written.get() }
            } else {
                try await written.get()
            }
        } catch {
            throw mailbox.failure ?? CommunicatorError.rankFailed(rank: destination, reason: "cannot send to it: \(error)")
        }
    }

    /// A buffer for a message, with the header written (and room in front for a frame's, over
    /// TCP).
    func messageBuffer(context: UInt64, tag: Int32, capacity: Int = 64) -> ByteBuffer {
        var buffer = Frame.payloadBuffer(capacity: capacity + RankMessageHeader.size)
        RankMessageHeader.write(context: context, tag: tag, into: &buffer)
        return buffer
    }

    /// Waits until `done` holds. Over TCP, messages arrive by reads on the loop: `suspend` waits
    /// for what signals it (a receive completed, a write done); on the loop, the rank first
    /// polls its sockets (``BusyPoll``). A wait for a message from `source` reads that rank's
    /// socket itself while it polls (``SocketReader``), so that the message is taken and the
    /// wait ends without suspending; other waits poll until a socket has data, so that the loop
    /// reads it without being woken. Over shared memory, the rank polls its rings first
    /// (``SharedMemoryLinks/wait(until:orSuspend:)``), on its loop.
    ///
    /// - Returns: what `suspend` returned, or `nil` when `done` held without it.
    nonisolated(nonsending) func wait<T>(
        from source: Int? = nil, until done: () -> Bool, orSuspend suspend: nonisolated(nonsending) () async throws -> T
    ) async throws -> T? {
        guard case let .polled(links) = links else {
            guard let tcp, case let .tcp(channels) = links, isOnLoop, !done(), let poll = tcp.value.poll else {
                return try await suspend()
            }
            let polling = tcp.value
            poll.waitStarted()
            // Not while a write waits for the socket: NIO finishes it only between polls.
            if poll.shouldPoll(), polling.holdsNoWrites(channels) {
                let ends = { done() || self.executor.hasQueuedWork }
                // (This rank has no reader of its own.)
                if let source, let reader = polling.readers[source] {
                    poll.poll(reading: reader, until: ends)
                } else {
                    poll.poll(until: ends)
                }
            }
            defer {
                // A caller isolated to an actor may come back elsewhere.
                if isOnLoop { poll.waitEnded() }
            }
            if done() { return nil }
            return try await suspend()
        }
        if isOnLoop { return try await links.wait(until: done, orSuspend: suspend) }
        // Off the caller's actor, if it has one (`isolation: nil`: the main actor, for a
        // request waited for from top-level code), onto the loop, where the links live.
        return try await withTaskExecutorPreference(executor, isolation: nil) { try await links.wait(until: done, orSuspend: suspend) }
    }

    /// Receives a message of `context` from world rank `source` with `tag` (or any) straight
    /// from the link, when the links have a direct path and nothing could take the message first
    /// (``PolledLinks/receiveDirectly(from:context:tag:giveUp:take:)``): `take` gets its body.
    /// `nil` to take the usual way. Only on the loop.
    ///
    /// - Returns: the message's tag.
    @inline(__always)
    func receiveDirectly(
        from source: Int, context: UInt64, tag: Int32?, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        guard source != rank, isOnLoop, mailbox.mayReceiveDirectly(from: source) else { return nil }
        guard let direct else { return receiveDirectlyOverTCP(from: source, context: context, tag: tag, take: take) }
        switch direct {
        case let .sharedMemory(links):
            return links._withUnsafeGuaranteedRef {
                $0.receiveDirectly(from: source, context: context, tag: tag, giveUp: { self.mayNotWait }, take: take)
            }
        case let .library(links):
            return links._withUnsafeGuaranteedRef {
                $0.receiveDirectly(from: source, context: context, tag: tag, giveUp: { self.mayNotWait }, take: take)
            }
        }
    }

    /// ``receiveDirectly(from:context:tag:take:)`` over TCP: reads `source`'s socket for up to
    /// ``directReceiveSpin`` and takes its next message from the frame decoder, past the mailbox
    /// (``RankConnectionHandler/receiveDirectly(context:tag:take:polling:)``). Not while the
    /// loop's polling is off or a write waits for the socket, as ``wait(from:until:orSuspend:)``.
    @inline(never)
    private func receiveDirectlyOverTCP(
        from source: Int, context: UInt64, tag: Int32?, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        guard let tcp, case let .tcp(channels) = links else { return nil }
        let links = tcp.value
        guard let poll = links.poll, let reader = links.readers[source], let handler = links.handlers[source],
              poll.shouldPoll(), links.holdsNoWrites(channels) else { return nil }
        poll.waitStarted()
        let taken = handler.receiveDirectly(context: context, tag: tag, take: take) { received in
            // Until the message came, or anything arrived that it must not pass (a goodbye).
            poll.poll(reading: reader, for: directReceiveSpin) {
                received() || self.mayNotWait || !self.mailbox.mayReceiveDirectly(from: source)
            }
        }
        if taken != nil { poll.waitEnded() }
        return taken
    }

    /// Whether a wait on the direct path should end: the job failed, or other tasks of the rank
    /// have work to do (the usual way waits for them).
    private var mayNotWait: Bool { mailbox.failure != nil || executor.hasQueuedWork }

    /// Takes what has arrived on polled links, once, when called on the loop (a non-blocking
    /// probe drives them so); over TCP, reads do that already.
    func pollOnce() {
        guard let direct, isOnLoop else { return }
        switch direct {
        case let .sharedMemory(links): links._withUnsafeGuaranteedRef { $0.poll() }
        case let .library(links): links._withUnsafeGuaranteedRef { $0.poll() }
        }
    }

    /// Whether this runs on the rank's loop.
    var isOnLoop: Bool { executor.isCurrent }

    /// Which transport links the ranks: on an MPI library, the library, whether or not
    /// messages travel through rings in its shared window.
    var transport: Launcher.Transport {
        if usesLibrary { return .library }
        return switch links {
        case .tcp: .tcp
        case let .polled(links): links.transport
        }
    }

    // MARK: Failures and the end

    /// Something happened on the connection to another rank.
    ///
    /// A goodbye: nothing more comes from that rank. A close without a goodbye: the rank died
    /// (or was cut off); the launcher usually says how within moments, and if it has not after
    /// a second, the job fails with what this rank saw.
    func handle(_ event: RankLinkEvent) {
        let peer: Int
        switch event {
        case let .goodbye(from):
            peer = from
            mailbox.finished(from)
        case .closed(nil, _):
            return
        case let .closed(from?, afterGoodbye):
            peer = from
            if !afterGoodbye, !state.withLock({ $0.finalized }) {
                executor.eventLoop.scheduleTask(in: .seconds(1)) { [mailbox] in
                    mailbox.fail(.rankFailed(rank: from, reason: "its connection closed without a goodbye (the process died, or was cut off)"))
                }
            }
        }
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            state.goodbyesMissing.remove(peer)
            guard state.goodbyesMissing.isEmpty else { return nil }
            defer { state.goodbyeWaiter = nil }
            return state.goodbyeWaiter
        }
        waiter?.resume()
    }

    func launcherLost(_ reason: String) {
        guard !state.withLock({ $0.finalized }) else { return }
        mailbox.fail(.launcherLost(reason))
    }

    /// Says goodbye to every other rank, waits (up to `timeout`) for theirs, closes the
    /// connections and tells the launcher how this rank ended.
    ///
    /// - Parameter failure: why the rank's program failed, or `nil` when it finished in order.
    func finalize(failure: String?, timeout: Duration = .seconds(30)) async {
        guard !finalizing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let failure {
            await launcher?.send(.failed(reason: failure))
            if case let .polled(links) = links { await onLoop { links.abort(failure) } }
        } else {
            // Closing before the others have read everything could lose their data: wait for
            // their goodbyes first (MPI_Finalize is collective too).
            switch links {
            case let .tcp(channels):
                for case let channel? in channels { channel.writeAndFlush(Frame(kind: .goodbye), promise: nil) }
            case let .polled(links):
                await onLoop { await finishPolled(links, timeout: timeout) }
            }
            let deadline = executor.eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
                state.withLock { state in
                    defer { state.goodbyeWaiter = nil }
                    return state.goodbyeWaiter
                }?.resume()
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = state.withLock { state in
                    if state.goodbyesMissing.isEmpty || mailbox.failure != nil { return true }
                    state.goodbyeWaiter = continuation
                    return false
                }
                if done { continuation.resume() }
            }
            deadline.cancel()
            await launcher?.send(.finished)
        }
        state.withLock { $0.finalized = true }
        switch links {
        case let .tcp(channels):
            for case let channel? in channels { try? await channel.close() }
            if let tcp { executor.eventLoop.execute { tcp.value.poll?.release() } }
        case let .polled(links):
            await onLoop { links.close() }
        }
        await launcher?.close()
        // The loop thread stays: code after finalize may still run on it (under withWorld it
        // does), and an idle loop costs nothing until the process ends.
    }

    var isFinalized: Bool { finalizing.load(ordering: .acquiring) }

    /// Says goodbye through polled links and drives them until every goodbye is in and
    /// everything this rank wrote is out (or the job failed, or `timeout` passed).
    private func finishPolled(_ links: any PolledLinks, timeout: Duration) async {
        links.sayGoodbye()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        let done = { [self] in
            mailbox.failure != nil || (links.allWritten && state.withLock { $0.goodbyesMissing.isEmpty })
        }
        while clock.now < deadline, !done() {
            // Parked: the bell drives the rings meanwhile.
            _ = try? await links.wait(until: done) { try await Task.sleep(for: .milliseconds(1)) }
        }
    }

    /// Runs `body` on the rank's loop.
    private func onLoop(_ body: () async -> Void) async {
        if isOnLoop { return await body() }
        await withTaskExecutorPreference(executor) { await body() }
    }
}
