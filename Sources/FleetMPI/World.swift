import CFleetMPI
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
    /// Whether the ranks run on an MPI library (``usesLibrary``), whether or not their messages
    /// travel through it.
    private let onLibrary: Bool
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

    private init(
        rank: Int, size: Int, mailbox: Mailbox, executor: EventLoopTaskExecutor, timeout: Duration?,
        group: MultiThreadedEventLoopGroup?, links: RankLinks, tcp: NIOLoopBound<TCPLinks>? = nil,
        onLibrary: Bool = false, launcher: LauncherLink?, logger: Logger
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
        self.onLibrary = onLibrary
        self.launcher = launcher
        self.logger = logger
        state.withLock { $0.goodbyesMissing = Set((0..<size).filter { $0 != rank }) }
    }

    /// A world of one rank: a program run without a launcher.
    static func single(timeout: Duration?) -> World {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        return World(
            rank: 0, size: 1, mailbox: Mailbox(), executor: EventLoopTaskExecutor(loop), timeout: timeout,
            group: nil, links: .tcp([nil]), launcher: nil, logger: Logger(label: "fleet.mpi"))
    }

    /// Joins the job the launcher described: listens for the higher ranks, registers with the
    /// launcher, receives every rank's address, dials the lower ranks, and waits until every
    /// connection is up.
    static func join(_ environment: LaunchEnvironment, logger: Logger = Logger(label: "fleet.mpi")) async throws -> World {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            return try await join(environment, group: group, logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func join(_ environment: LaunchEnvironment, group: MultiThreadedEventLoopGroup, logger: Logger) async throws -> World {
        keepLargeBuffersMapped()
        if case let .sharedMemory(fd) = environment.transport {
            return try await joinSharedMemory(environment, segment: fd, group: group, logger: logger)
        }
        let rank = environment.rank, size = environment.size
        let loop = group.next()
        let mailbox = Mailbox()
        let configuration = WireConfiguration(
            credentials: .secret(environment.secret), maximumPayloadSize: maximumMessageSize,
            handshakeTimeout: .seconds(30), connectTimeout: .seconds(10), logger: logger)
        // Until the world exists, closed connections and goodbyes go to the joining state.
        let joining = Joining(expected: size - 1 - rank, loop: loop)
        let server = try await WireBootstrap.server(group: group)
            .childChannelOption(.recvAllocator, value: Self.receiveBuffers)
            .childChannelOption(.writeBufferWaterMark, value: FrameWriter.exactWaterMark)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sink = FrameSink()
                    _ = try WirePipeline.configure(channel, role: .server, configuration: configuration, tlsContext: nil, sink: sink)
                    try channel.pipeline.syncOperations.addHandler(RankConnectionHandler(
                        mailbox: mailbox, size: size, peer: nil, sink: sink,
                        identified: { peer, channel in peer > rank && joining.accepted(peer, channel) },
                        event: { joining.handle($0) }))
                }
            }
            .bind(host: environment.host, port: 0).get()
        let port = server.localAddress?.port ?? 0
        let ownEndpoint = Endpoint(host: environment.host, port: port)

        let (launcher, table) = try await LauncherLink.connect(
            to: environment.launcher, configuration: configuration, rank: rank, endpoint: ownEndpoint,
            abort: { rank, reason in mailbox.fail(.rankFailed(rank: rank, reason: reason)) })
        guard table.count == size else {
            throw CommunicatorError.notLaunched("the launcher sent \(table.count) addresses for \(size) ranks")
        }
        var links = [(any Channel)?](repeating: nil, count: size)
        for peer in 0..<rank {
            let endpoint = try Endpoint(table[peer])
            let authenticated = loop.makePromise(of: PeerInfo.self)
            let channel: any Channel
            do {
                channel = try await WireBootstrap.client(group: group, configuration: configuration)
                    .channelOption(.recvAllocator, value: Self.receiveBuffers)
                    .channelOption(.writeBufferWaterMark, value: FrameWriter.exactWaterMark)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let sink = FrameSink()
                            let handshake = try WirePipeline.configure(
                                channel, role: .client(serverHostname: nil), configuration: configuration, tlsContext: nil, sink: sink)
                            try channel.pipeline.syncOperations.addHandler(RankConnectionHandler(
                                mailbox: mailbox, size: size, peer: peer, sink: sink,
                                identified: { _, _ in false },
                                event: { joining.handle($0) }))
                            // The hello goes out first, before any message.
                            handshake.whenSuccess { _ in
                                let hello = try? Frame(kind: .message, encoding: RankHello(rank: rank))
                                if let hello { channel.writeAndFlush(hello, promise: nil) }
                            }
                            handshake.cascade(to: authenticated)
                        }
                    }
                    .connect(host: endpoint.host, port: endpoint.port).get()
            } catch {
                authenticated.fail(error)
                throw error
            }
            _ = try await authenticated.futureResult.get()
            links[peer] = channel
        }
        for (peer, channel) in try await joining.everyoneAccepted(timeout: .seconds(60)) { links[peer] = channel }
        // New connections are not wanted any more.
        try? await server.close()

        let channels = links.compactMap { $0 }
        let budget = environment.spinBudget(ranks: size)
        let tcp = try await loop.submit { [links] in
            NIOLoopBound(TCPLinks(
                poll: BusyPoll(channels: channels, on: loop, budget: budget),
                readers: links.map { $0.flatMap { SocketReader(channel: $0, sizes: Self.receiveBuffers) } },
                writers: links.map { $0.flatMap { FrameWriter(channel: $0) } },
                handlers: links.map { $0.flatMap { try? $0.pipeline.syncOperations.handler(type: RankConnectionHandler.self) } }),
                eventLoop: loop)
        }.get()
        let world = World(
            rank: rank, size: size, mailbox: mailbox, executor: EventLoopTaskExecutor(loop), timeout: environment.timeout,
            group: group, links: .tcp(links), tcp: tcp, launcher: launcher, logger: logger)
        joining.hand(to: world)
        launcher.whenLost { reason in world.launcherLost(reason) }
        return world
    }

    /// Joins a job whose ranks share this host's memory: maps the segment the launcher made,
    /// registers with the launcher and waits until every rank has.
    private static func joinSharedMemory(
        _ environment: LaunchEnvironment, segment fd: Int32, group: MultiThreadedEventLoopGroup, logger: Logger
    ) async throws -> World {
        let rank = environment.rank, size = environment.size
        let loop = group.next()
        let mailbox = Mailbox()
        let joining = Joining(expected: 0, loop: loop)
        // Made on the loop, which alone touches its state.
        let links = try await loop.submit {
            try SharedMemoryLinks(
                fd: fd, rank: rank, size: size, loop: loop, spinBudget: environment.spinBudget(ranks: size),
                deliver: { mailbox.deliver($0) },
                claim: { mailbox.claim(source: $0, context: $1, tag: $2, length: $3) },
                completeClaimed: { mailbox.completeClaimed($0, context: $1, source: $2, tag: $3) },
                event: { joining.handle($0) },
                failed: { mailbox.fail($0) })
        }.get()
        mailbox.whenFailed { error in loop.execute { links.abandon(error) } }
        let configuration = WireConfiguration(
            credentials: .secret(environment.secret), handshakeTimeout: .seconds(30), connectTimeout: .seconds(10), logger: logger)
        let (launcher, table) = try await LauncherLink.connect(
            to: environment.launcher, configuration: configuration, rank: rank,
            endpoint: Endpoint(host: environment.host, port: 0),
            abort: { rank, reason in mailbox.fail(.rankFailed(rank: rank, reason: reason)) })
        guard table.count == size else {
            throw CommunicatorError.notLaunched("the launcher sent \(table.count) addresses for \(size) ranks")
        }
        let world = World(
            rank: rank, size: size, mailbox: mailbox, executor: EventLoopTaskExecutor(loop), timeout: environment.timeout,
            group: group, links: .polled(links), launcher: launcher, logger: logger)
        joining.hand(to: world)
        launcher.whenLost { reason in world.launcherLost(reason) }
        return world
    }

    /// Joins the job an MPI launcher (`mpirun`, `srun`) started, through the MPI library.
    ///
    /// When every rank runs on this host, messages between ranks travel through FleetMPI's
    /// shared-memory rings (``SharedMemoryLinks``) in a window the library shares between them
    /// (`MPI_Win_allocate_shared`), unless `FLEET_MPI_NODE_RINGS` is `0` for some rank, and so
    /// do FleetMPI's own collectives; the library still starts, ends and aborts the job.
    /// Across hosts, messages travel through the library, and the world's barrier and numeric
    /// allreduces are the library's own. (``LibraryLinks/nodeSegment()``.)
    static func joinLibrary(timeout: Duration?, logger: Logger) async throws -> World {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let mailbox = Mailbox()
        let joining = Joining(expected: 0, loop: loop)
        let links: any PolledLinks, rank: Int, size: Int
        do {
            (links, rank, size) = try await loop.submit { () throws -> (any PolledLinks, Int, Int) in
                let library = try LibraryLinks(
                    loop: loop, spinBudget: .milliseconds(1),
                    deliver: { mailbox.deliver($0) },
                    event: { joining.handle($0) },
                    failed: { mailbox.fail($0) })
                let segment: UnsafeMutableRawPointer?
                do {
                    segment = library.size > 1 ? try library.nodeSegment() : nil
                } catch {
                    // Every rank fails alike here; the library ends the job (no rank waits
                    // for one that left, under srun as under mpirun).
                    library.abort("\(error)")
                    throw error
                }
                guard let segment else { return (library, library.rank, library.size) }
                let rings = SharedMemoryLinks(
                    segment: segment, rank: library.rank, size: library.size, loop: loop,
                    spinBudget: isOversubscribed(ranks: library.size) ? .microseconds(200) : .milliseconds(1), library: library,
                    deliver: { mailbox.deliver($0) },
                    claim: { mailbox.claim(source: $0, context: $1, tag: $2, length: $3) },
                    completeClaimed: { mailbox.completeClaimed($0, context: $1, source: $2, tag: $3) },
                    event: { joining.handle($0) },
                    failed: { mailbox.fail($0) })
                return (rings, library.rank, library.size)
            }.get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        if let rings = links as? SharedMemoryLinks {
            mailbox.whenFailed { error in loop.execute { rings.abandon(error) } }
        }
        let world = World(
            rank: rank, size: size, mailbox: mailbox, executor: EventLoopTaskExecutor(loop), timeout: timeout,
            group: group, links: .polled(links), onLibrary: true, launcher: nil, logger: logger)
        joining.hand(to: world)
        return world
    }

    /// Whether the world runs on an MPI library (which starts, ends and aborts the job).
    var usesLibrary: Bool { onLibrary }

    /// Whether the library's own barrier and allreduce serve the world communicator: on a
    /// library whose messages travel through it (not through rings, which only FleetMPI's own
    /// collectives drive while they wait).
    var usesLibraryCollectives: Bool { onLibrary && !usesNodeRings }

    /// Whether the world runs on an MPI library and its messages travel through rings in the
    /// library's shared window (``joinLibrary(timeout:logger:)``).
    var usesNodeRings: Bool {
        if onLibrary, case .sharedMemory = direct { true } else { false }
    }

    /// Large messages are buffers of megabytes, allocated and freed at every step of a
    /// collective. By default glibc maps each one afresh and unmaps it when freed, and touching
    /// fresh pages costs a fault per 4 KiB (tens of milliseconds per 8 MB on a VM). MPI libraries
    /// keep such memory (OpenMPI's memory hooks set the same options): buffers up to 64 MiB come
    /// from the heap, and the heap keeps up to 256 MiB of free memory for reuse.
    private static func keepLargeBuffersMapped() {
        _ = fleet_mpi_keep_large_buffers(64 << 20, 256 << 20)
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
        if onLibrary { return .library }
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
    fileprivate func handle(_ event: RankLinkEvent) {
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

    private func launcherLost(_ reason: String) {
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

/// How a rank reaches the others.
enum RankLinks: Sendable {
    /// A TCP connection to each other rank, by world rank (`nil` for this rank).
    case tcp([(any Channel)?])
    /// Shared memory or an MPI library: links the rank polls.
    case polled(any PolledLinks)
}

/// How a rank uses its TCP connections on its loop: one ``BusyPoll`` over them all (`nil` when
/// polling is off), and a ``SocketReader``, a ``FrameWriter`` and the ``RankConnectionHandler``
/// of each (by world rank; `nil` for this rank, or where the socket cannot be read or the frames
/// written directly).
///
/// A class, so that reaching one of them retains one reference, not four arrays.
final class TCPLinks {
    let poll: BusyPoll?
    let readers: [SocketReader?]
    let writers: [FrameWriter?]
    let handlers: [RankConnectionHandler?]

    init(poll: BusyPoll?, readers: [SocketReader?], writers: [FrameWriter?], handlers: [RankConnectionHandler?]) {
        self.poll = poll
        self.readers = readers
        self.writers = writers
        self.handlers = handlers
    }

    /// Whether everything written to `channels` (these links' connections) has gone to their
    /// sockets: a write still held makes progress only when the loop runs, not while it polls.
    func holdsNoWrites(_ channels: [(any Channel)?]) -> Bool {
        for (channel, writer) in zip(channels, writers) {
            if let writer { guard writer.holdsNoWrites else { return false } } else if let channel, !channel.isWritable { return false }
        }
        return true
    }
}

/// The connections of a rank that is joining: the accepted ones as they identify themselves,
/// and, once the world exists, where closes and goodbyes go.
private final class Joining: Sendable {
    private struct State {
        var accepted: [Int: any Channel] = [:]
        var waiter: CheckedContinuation<[Int: any Channel], any Error>?
        var failure: (any Error)?
        var world: World?
        /// Goodbyes and closes that came before the world existed.
        var early: [RankLinkEvent] = []
    }
    private let expected: Int
    private let loop: any EventLoop
    private let state = Mutex(State())

    init(expected: Int, loop: any EventLoop) {
        self.expected = expected
        self.loop = loop
    }

    func accepted(_ peer: Int, _ channel: any Channel) -> Bool {
        let (ok, ready) = state.withLock { state -> (Bool, (CheckedContinuation<[Int: any Channel], any Error>, [Int: any Channel])?) in
            guard state.accepted[peer] == nil, state.world == nil else { return (false, nil) }
            state.accepted[peer] = channel
            guard state.accepted.count == expected, let waiter = state.waiter else { return (true, nil) }
            state.waiter = nil
            return (true, (waiter, state.accepted))
        }
        if let (waiter, accepted) = ready { waiter.resume(returning: accepted) }
        return ok
    }

    func fail(_ error: any Error) {
        let waiter = state.withLock { state in
            if state.failure == nil { state.failure = error }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error)
    }

    func everyoneAccepted(timeout: Duration) async throws -> [Int: any Channel] {
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) { [self] in
            fail(CommunicatorError.notLaunched("not every rank connected within \(timeout)"))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<[Int: any Channel], any Error>? = state.withLock { state in
                if let failure = state.failure { return .failure(failure) }
                if state.accepted.count == expected { return .success(state.accepted) }
                state.waiter = continuation
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    func handle(_ event: RankLinkEvent) {
        let world = state.withLock { state -> World? in
            if state.world == nil { state.early.append(event) }
            return state.world
        }
        if let world { return world.handle(event) }
        if case let .closed(peer?, false) = event {
            fail(CommunicatorError.rankFailed(rank: peer, reason: "its connection closed while the ranks were connecting"))
        }
    }

    func hand(to world: World) {
        let early = state.withLock { state in
            state.world = world
            defer { state.early = [] }
            return state.early
        }
        for event in early { world.handle(event) }
    }
}
