import CFleetMPI
import FleetWire
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// How a rank joins its job: alone, through the launcher's environment (TCP or shared memory),
/// or through an MPI library.
extension World {
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
            rings(
                over: try SharedMemoryLinks.mapSegment(fd: fd, ranks: size), rank: rank, size: size, loop: loop,
                spinBudget: environment.spinBudget(ranks: size), library: nil, mailbox: mailbox, joining: joining)
        }.get()
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
                let links = rings(
                    over: segment, rank: library.rank, size: library.size, loop: loop,
                    spinBudget: LaunchEnvironment.defaultSpinBudget(ranks: library.size), library: library,
                    mailbox: mailbox, joining: joining)
                return (links, library.rank, library.size)
            }.get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        let world = World(
            rank: rank, size: size, mailbox: mailbox, executor: EventLoopTaskExecutor(loop), timeout: timeout,
            group: group, links: .polled(links), usesLibrary: true, launcher: nil, logger: logger)
        joining.hand(to: world)
        return world
    }

    /// A rank's rings over `segment` (in the library's window, when `library` holds it): their
    /// messages go to `mailbox`, their goodbyes to `joining`, and once the job fails, their
    /// writes still waiting for room fail. On `loop`.
    private static func rings(
        over segment: UnsafeMutableRawPointer, rank: Int, size: Int, loop: any EventLoop, spinBudget: Duration,
        library: LibraryLinks?, mailbox: Mailbox, joining: Joining
    ) -> SharedMemoryLinks {
        let links = SharedMemoryLinks(
            segment: segment, rank: rank, size: size, loop: loop, spinBudget: spinBudget, library: library,
            deliver: { mailbox.deliver($0) },
            claim: { mailbox.claim(source: $0, context: $1, tag: $2, length: $3) },
            completeClaimed: { mailbox.completeClaimed($0, context: $1, source: $2, tag: $3) },
            event: { joining.handle($0) },
            failed: { mailbox.fail($0) })
        mailbox.whenFailed { error in loop.execute { links.abandon(error) } }
        return links
    }

    /// Large messages are buffers of megabytes, allocated and freed at every step of a
    /// collective. By default glibc maps each one afresh and unmaps it when freed, and touching
    /// fresh pages costs a fault per 4 KiB (tens of milliseconds per 8 MB on a VM). MPI libraries
    /// keep such memory (OpenMPI's memory hooks set the same options): buffers up to 64 MiB come
    /// from the heap, and the heap keeps up to 256 MiB of free memory for reuse.
    private static func keepLargeBuffersMapped() {
        _ = fleet_mpi_keep_large_buffers(64 << 20, 256 << 20)
    }
}
