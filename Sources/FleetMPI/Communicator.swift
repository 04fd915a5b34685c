import FleetWire
import Logging
import NIOCore
import Synchronization

/// A group of ranks that exchange messages: MPI's communicator, and pyMPI's `mpi` module.
///
/// Every rank of a job runs the same program; ``world()`` gives each its place in the job — its
/// ``rank`` and the ``size`` — from what the launcher (`fleet launch -n N -- program`) set up.
/// The seed's pi, in Swift:
///
/// ```swift
/// try await Communicator.withWorld { world in
///     let mine = estimatePi(samples: 10_000)
///     let pi = try await world.allreduce(mine, .sum) / Double(world.size)
///     if world.rank == 0 { print("pi:", pi) }
/// }
/// ```
///
/// - Point to point: ``send(_:to:tag:)`` and ``recv(_:from:tag:)`` carry any `Codable` value in
///   the binary format; ``send(contentsOf:to:tag:)`` and ``recv(into:from:tag:)`` carry numeric
///   buffers as raw bytes (mpi4py's uppercase methods). ``isend(_:to:tag:)``,
///   ``irecv(_:from:tag:)``, ``sendrecv(_:to:sendTag:from:receiveTag:)``, ``probe(from:tag:)``.
/// - Collectives: ``barrier()``, ``bcast(_:root:)``, ``scatter(_:root:)``, ``gather(_:root:)``,
///   ``allgather(_:)``, ``reduce(_:_:root:)``, ``allreduce(_:_:)``, ``alltoall(_:)``,
///   ``scan(_:_:)``, with ``Reduction`` operations.
/// - ``split(color:key:)`` makes sub-communicators.
///
/// Failure contract: when a rank dies or its program throws, every other rank's pending and
/// future operations throw ``CommunicatorError/rankFailed(rank:reason:)`` naming it, and the
/// launcher exits non-zero with the same message. A ``Configuration/timeout`` bounds each
/// operation.
///
/// Operations run on the rank's own event loop thread, where its connections are read: a
/// message wakes the receive waiting for it with no thread hop. ``withWorld(_:)`` runs the
/// whole program there, which is the fastest way to use a communicator.
public final class Communicator: Sendable {
    /// This rank's number in the communicator: `0..<size`.
    public let rank: Int
    /// The number of ranks in the communicator.
    public let size: Int
    /// How the ranks exchange messages: what the launcher chose (`fleet launch --transport`), or
    /// ``Launcher/Transport/library`` under `mpirun` or `srun` (where, with every rank on one
    /// host, the messages travel through rings in a window the library shares between them).
    public var transport: Launcher.Transport { world.transport }

    /// What carries this rank's messages, for tests and benchmarks: the transport, and
    /// `mpi+rings` on an MPI library whose ranks all run on one host (rings in the library's
    /// shared window).
    package var messageLinks: String { world.usesNodeRings ? "mpi+rings" : world.transport.rawValue }

    let world: World
    /// The world rank of each member, by rank in this communicator.
    let members: [Int]
    /// This communicator's rank of each world rank (-1 when not a member).
    private let localRanks: [Int]
    /// Point-to-point messages use `context`; collectives `context | 1`, so neither sees the other's.
    let context: UInt64
    private let collectives = Atomic<UInt32>(0)
    private let splits = Atomic<UInt64>(0)

    init(world: World, members: [Int], context: UInt64) {
        self.world = world
        self.members = members
        self.context = context
        self.size = members.count
        var localRanks = [Int](repeating: -1, count: world.size)
        for (local, worldRank) in members.enumerated() { localRanks[worldRank] = local }
        self.localRanks = localRanks
        self.rank = localRanks[world.rank]
    }

    /// How a rank joins its job.
    public struct Configuration: Sendable {
        /// How long one operation may wait before it throws ``CommunicatorError/timedOut(operation:after:)``;
        /// `nil` (the default, unless the launcher was given `--timeout`, or `FLEET_MPI_TIMEOUT`
        /// is set for a job under `mpirun`) waits as long as the
        /// job lives — a failed rank still ends the wait.
        public var timeout: Duration?
        /// Where connection problems are logged.
        public var logger: Logger

        /// A configuration with the launcher's timeout, if it set one.
        public init(timeout: Duration? = nil, logger: Logger = Logger(label: "fleet.mpi")) {
            self.timeout = timeout
            self.logger = logger
        }
    }

    private static let joined = Mutex<Task<Communicator, any Error>?>(nil)

    /// This rank's world communicator: every rank of the job (`MPI_COMM_WORLD`).
    ///
    /// The first call joins the job the launcher started — connects to every other rank,
    /// authenticated with the job's secret — and later calls return the same communicator. A
    /// program started without a launcher is a world of one rank.
    ///
    /// - Throws: ``CommunicatorError/notLaunched(_:)`` for an incomplete launch environment;
    ///   ``CommunicatorError/launcherLost(_:)`` when the launcher cannot be reached;
    ///   ``CommunicatorError/rankFailed(rank:reason:)`` when a rank fails while the job starts.
    public static func world(configuration: Configuration = Configuration()) async throws -> Communicator {
        let task = joined.withLock { joined in
            if let joined { return joined }
            let task = Task {
                let environment = try LaunchEnvironment.current()
                let world: World
                if let environment {
                    var environment = environment
                    environment.timeout = configuration.timeout ?? environment.timeout
                    world = try await World.join(environment, logger: configuration.logger)
                } else if LibraryLinks.isLaunchedByMPI {
                    world = try await World.joinLibrary(
                        timeout: configuration.timeout ?? LaunchEnvironment.timeout(), logger: configuration.logger)
                } else {
                    world = World.single(timeout: configuration.timeout)
                }
                return Communicator(world: world, members: Array(0..<world.size), context: Communicator.worldContext)
            }
            joined = task
            return task
        }
        return try await task.value
    }

    /// Joins the world, runs `body` with it on the rank's event loop, and finalizes: the
    /// bracket of `MPI_Init` and `MPI_Finalize`.
    ///
    /// When `body` throws, the launcher hears why before the error is rethrown, and the other
    /// ranks' operations fail with ``CommunicatorError/rankFailed(rank:reason:)``.
    public static func withWorld<Result: Sendable>(
        configuration: Configuration = Configuration(),
        _ body: (Communicator) async throws -> Result
    ) async throws -> Result {
        let world = try await Communicator.world(configuration: configuration)
        do {
            let result = try await withTaskExecutorPreference(world.world.executor) { try await body(world) }
            await world.finalize()
            return result
        } catch {
            await world.world.finalize(failure: "\(error)")
            throw error
        }
    }

    /// Ends this rank's part in the job: says goodbye to every other rank, waits for theirs
    /// (`MPI_Finalize` is collective), and tells the launcher this rank finished. Operations
    /// after it throw ``CommunicatorError/finalized``.
    public func finalize() async {
        await world.finalize(failure: nil)
    }

    // MARK: Internals shared by the operations

    var collectiveContext: UInt64 { context | 1 }

    /// The context of the world communicator's point-to-point messages (sub-communicators get
    /// others from ``split(color:key:)``).
    static let worldContext: UInt64 = 2

    /// The tag of the next collective: every rank calls collectives in the same order, so the
    /// same call gets the same tag everywhere.
    func nextCollectiveTag() -> Int32 {
        Int32(bitPattern: collectives.add(1, ordering: .relaxed).newValue & 0x7fff_ffff)
    }

    func nextSplitNumber() -> UInt64 {
        splits.add(1, ordering: .relaxed).newValue
    }

    func worldRank(of rank: Int) throws(CommunicatorError) -> Int {
        guard (0..<size).contains(rank) else { throw .invalidRank(rank, size: size) }
        return members[rank]
    }

    func localRank(of worldRank: Int) -> Int {
        localRanks[worldRank]
    }

    /// Throws the job's failure, or ``CommunicatorError/finalized``. The common case, neither,
    /// costs two atomic loads and no call (a call would count a reference to the mailbox).
    func checkOpen() throws(CommunicatorError) {
        if world.mailbox.hasFailed.load(ordering: .acquiring) || world.isFinalized { try throwClosed() }
    }

    @inline(never)
    private func throwClosed() throws(CommunicatorError) {
        if let failure = world.mailbox.failure { throw failure }
        if world.isFinalized { throw .finalized }
    }

    /// Runs `body` on this rank's event loop, where ``withWorld(configuration:_:)`` runs its
    /// body: the communicator's operations made in it start and finish there, with no hop
    /// between threads (each hop is a thread wake-up, microseconds). For programs that join
    /// with ``world(configuration:)`` and talk from tasks of their own. Code of `body` that is
    /// isolated to an actor (the main actor, say) still runs on that actor; the calls it makes
    /// to the communicator run on the loop.
    ///
    /// ```swift
    /// let world = try await Communicator.world()
    /// let total = try await world.withRankLoop { try await world.allreduce(mine, .sum) }
    /// ```
    public func withRankLoop<Result, Failure: Error>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        if world.isOnLoop { return try await body() }
        return try await withTaskExecutorPreference(world.executor, isolation: isolation, operation: body)
    }

    /// Runs `body` on the rank's event loop; under ``withWorld(configuration:_:)`` it is there
    /// already, and runs at once.
    @inline(__always)
    nonisolated(nonsending) func onLoop<T: Sendable>(_ body: nonisolated(nonsending) () async throws -> T) async throws -> T {
        if world.isOnLoop { return try await body() }
        return try await hopToLoop(body)
    }

    /// ``onLoop(_:)`` from off the loop. A function of its own, so that the way back to the
    /// caller's executor after the hop (a task switch, which looks up the task's executor
    /// preference under a lock) is not on the path of a caller that is on the loop already.
    @inline(never)
    nonisolated(nonsending) private func hopToLoop<T: Sendable>(_ body: nonisolated(nonsending) () async throws -> T) async throws -> T {
        // Off the caller's actor, if it has one (`isolation: nil`), onto the loop.
        try await withTaskExecutorPreference(world.executor, isolation: nil) { try await body() }
    }

    /// Sends `data` (a buffer from ``World/messageBuffer(context:tag:capacity:)``) to `rank`.
    nonisolated(nonsending) func transmit(_ data: ByteBuffer, to rank: Int) async throws {
        try await world.transmit(data, to: try worldRank(of: rank))
    }

    /// Encodes `value` into a message for `context` and `tag`.
    func encode<T: Encodable>(_ value: T, context: UInt64, tag: Int32) throws -> ByteBuffer {
        var buffer = world.messageBuffer(context: context, tag: tag)
        try BinaryEncoder().encode(value, into: &buffer)
        return buffer
    }

    /// Receives the next message matching the pattern, within the timeout.
    ///
    /// From one rank, on the rank's loop, the message comes straight from the link where the
    /// transport can, into a buffer of its size, past the mailbox (unless `direct` is `false`:
    /// the caller tried that already).
    nonisolated(nonsending) func receive(
        context: UInt64, from source: Int?, tag: Int32?, operation: String, direct: Bool = true
    ) async throws -> RankMessage {
        let pattern = MessagePattern(context: context, source: try source.map { try worldRank(of: $0) }, tag: tag)
        if direct, let worldSource = pattern.source {
            var data: ByteBuffer?
            if let tag = world.receiveDirectly(from: worldSource, context: context, tag: tag, take: { body in
                var buffer = ByteBufferAllocator().buffer(capacity: body.count)
                buffer.writeBytes(body)
                data = buffer
                return true
            }), let data {
                return RankMessage(context: context, source: worldSource, tag: tag, data: data)
            }
        }
        return try await wait(for: world.mailbox.post(pattern), operation: operation)
    }

    /// Waits for a posted receive, honouring cancellation and the timeout.
    nonisolated(nonsending) func wait(for receive: PostedReceive, operation: String) async throws -> RankMessage {
        if let outcome = receive.outcome { return try outcome.get() }
        let mailbox = world.mailbox
        let timer = world.timeout.map { timeout in
            world.executor.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                mailbox.withdraw(receive, because: CommunicatorError.timedOut(operation: operation, after: timeout))
            }
        }
        defer { timer?.cancel() }
        let message = try await world.wait(from: receive.pattern.source, until: { receive.isCompleted }) {
            try await withTaskCancellationHandler {
                try await receive.wait()
            } onCancel: {
                mailbox.withdraw(receive, because: CancellationError())
            }
        }
        if let message { return message }
        // Completed while the links were polled: read the outcome, with no continuation to make.
        if let outcome = receive.outcome { return try outcome.get() }
        return try await receive.wait()
    }

    /// Decodes a received message as `T`.
    func decode<T: Decodable>(_ type: T.Type, _ message: RankMessage) throws -> T {
        do {
            return try BinaryDecoder().decode(type, from: message.data)
        } catch {
            throw CommunicatorError.malformedMessage(from: localRank(of: message.source), "not a \(T.self): \(error)")
        }
    }

    func status(of message: RankMessage) -> MessageStatus {
        MessageStatus(source: localRank(of: message.source), tag: Int(message.tag), byteCount: message.data.readableBytes)
    }
}
