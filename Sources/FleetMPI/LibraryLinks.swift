import CFleetMPI
import Foundation
import NIOCore

/// The links of a rank through a real MPI library (OpenMPI, MPICH), for programs run by
/// `mpirun` or `srun` — FleetMPI built with the package trait `MPI` (`swift build --traits MPI`).
///
/// Messages travel as `MPI_BYTE` buffers on `MPI_COMM_WORLD`, each carrying FleetMPI's own
/// header (context and tag), so that ``Mailbox`` matches them as it does those of the other
/// transports, and sub-communicators work the same way. The library's own barrier and
/// allreduce serve the world communicator (``Communicator/barrier()``,
/// ``Communicator/allreduce(_:_:)`` on numbers), where MPI libraries have their best algorithms.
///
/// All calls into the library happen on the rank's event loop thread, the one that initialized
/// it, so the library runs single-threaded (`MPI_THREAD_SINGLE`, as `MPI_Init` asks for).
/// A wait polls the library (`MPI_Iprobe`, `MPI_Test`) for up to its spin budget; after that
/// the task suspends and the loop polls every 50 µs while any task waits, so that other tasks
/// of the rank run meanwhile.
final class LibraryLinks: PolledLinks {
    let rank: Int
    let size: Int
    private let loop: any EventLoop
    private let state: NIOLoopBound<LoopState>
    private let deliver: @Sendable (RankMessage) -> Void
    private let event: @Sendable (RankLinkEvent) -> Void
    private let failed: @Sendable (CommunicatorError) -> Void
    private let spinBudget: Duration
    private let oversubscribed: Bool

    /// The MPI tags FleetMPI uses on `MPI_COMM_WORLD`.
    private static let messageTag: Int32 = 1
    private static let goodbyeTag: Int32 = 2

    /// Touched on the loop thread only, so dynamic exclusivity checks are off (as in ``SharedMemoryLinks``).
    private final class LoopState {
        @exclusivity(unchecked) var sends: [Send] = []
        /// Where ``receiveDirectly(from:context:tag:giveUp:take:)`` receives small messages.
        @exclusivity(unchecked) var scratch = [UInt8](repeating: 0, count: LibraryLinks.directLimit)
        @exclusivity(unchecked) var suspended = 0
        @exclusivity(unchecked) var polling: Scheduled<Void>?
    }

    /// A send in flight: the library reads `bytes` until the request completes.
    private struct Send {
        let bytes: UnsafeMutableRawBufferPointer
        let request: UnsafeMutableRawPointer
        let promise: EventLoopPromise<Void>
    }

    /// Whether this process runs under an MPI launcher and FleetMPI was built with a library.
    static var isLaunchedByMPI: Bool {
        guard fleet_mpi_library_available() == 1 else { return false }
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"].contains { environment[$0] != nil }
    }

    /// The library's version line.
    static var libraryVersion: String { String(cString: fleet_mpi_library_version()) }

    /// Initializes the library (`MPI_Init_thread`). Must run on `loop`, which then makes every
    /// later call.
    init(
        loop: any EventLoop, spinBudget: Duration,
        deliver: @escaping @Sendable (RankMessage) -> Void,
        event: @escaping @Sendable (RankLinkEvent) -> Void,
        failed: @escaping @Sendable (CommunicatorError) -> Void
    ) throws {
        var rank: Int32 = 0, size: Int32 = 0
        try Self.check(fleet_mpi_init(&rank, &size), "MPI_Init_thread")
        self.rank = Int(rank)
        self.size = Int(size)
        self.loop = loop
        self.state = NIOLoopBound(LoopState(), eventLoop: loop)
        self.deliver = deliver
        self.event = event
        self.failed = failed
        self.spinBudget = spinBudget
        self.oversubscribed = isOversubscribed(ranks: Int(size))
    }

    static func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        let text = [CChar](unsafeUninitializedCapacity: 512) { buffer, initialized in
            fleet_mpi_error_string(code, buffer.baseAddress, Int32(buffer.count))
            initialized = strnlen(buffer.baseAddress!, buffer.count)
        }
        throw CommunicatorError.invalidArgument("\(call) failed: \(String(decoding: text.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
    }

    // MARK: Writing

    /// Starts sending `data` (a message with its header) to `destination`. Must run on the loop.
    ///
    /// - Returns: `nil` when the library has taken it already; else a future that completes
    ///   once it has.
    func write(_ data: ByteBuffer, to destination: Int) -> EventLoopFuture<Void>? {
        start(data, tag: Self.messageTag, to: destination)
    }

    /// Tells every other rank that nothing more comes from this one, after what was written.
    func sayGoodbye() {
        for peer in 0..<size where peer != rank {
            _ = start(ByteBuffer(), tag: Self.goodbyeTag, to: peer)
        }
    }

    private func start(_ data: ByteBuffer, tag: Int32, to destination: Int) -> EventLoopFuture<Void>? {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, data.readableBytes), alignment: 16)
        data.withUnsafeReadableBytes { source in
            if let base = source.baseAddress { bytes.baseAddress!.copyMemory(from: base, byteCount: source.count) }
        }
        let request = UnsafeMutableRawPointer.allocate(byteCount: max(8, fleet_mpi_request_size()), alignment: 16)
        let code = fleet_mpi_isend(bytes.baseAddress, Int32(data.readableBytes), Int32(destination), tag, request)
        var done: Int32 = 0
        if code == 0 { _ = fleet_mpi_test(request, &done) }
        if code != 0 || done != 0 {
            bytes.deallocate()
            request.deallocate()
            if code != 0 {
                let error = CommunicatorError.rankFailed(rank: destination, reason: "MPI_Isend to it failed (code \(code))")
                failed(error)
                return loop.makeFailedFuture(error)
            }
            return nil
        }
        let promise = loop.makePromise(of: Void.self)
        state.value.sends.append(Send(bytes: bytes, request: request, promise: promise))
        return promise.futureResult
    }

    /// Whether every send has completed. Must run on the loop.
    var allWritten: Bool { state.value.sends.isEmpty }

    // MARK: Reading and waiting

    /// Receives every message the library holds for this rank and completes finished sends.
    /// Must run on the loop.
    func progress() {
        var found: Int32 = 0, source: Int32 = 0, tag: Int32 = 0, count: Int32 = 0
        while fleet_mpi_iprobe(&found, &source, &tag, &count) == 0, found != 0 {
            var buffer = ByteBufferAllocator().buffer(capacity: Int(count))
            var code: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(count)) { target in
                code = fleet_mpi_recv(target.baseAddress, count, source, tag)
                return Int(count)
            }
            guard code == 0 else {
                failed(.rankFailed(rank: Int(source), reason: "MPI_Recv from it failed (code \(code))"))
                return
            }
            if tag == Self.goodbyeTag {
                event(.goodbye(Int(source)))
                continue
            }
            guard let header = RankMessageHeader.read(from: &buffer) else {
                failed(.malformedMessage(from: Int(source), "a message shorter than its header from the MPI library"))
                continue
            }
            deliver(RankMessage(context: header.context, source: Int(source), tag: header.tag, data: buffer))
        }
        let state = state.value
        guard !state.sends.isEmpty else { return }
        state.sends.removeAll { send in
            var done: Int32 = 0
            guard fleet_mpi_test(send.request, &done) == 0, done != 0 else { return false }
            send.bytes.deallocate()
            send.request.deallocate()
            send.promise.succeed()
            return true
        }
    }

    func poll() { progress() }

    /// The largest message ``receiveDirectly(from:context:tag:giveUp:take:)`` takes.
    static let directLimit = 16 << 10

    /// The direct path of a small message (``PolledLinks/receiveDirectly(from:context:tag:giveUp:take:)``):
    /// probes for a message from `source` alone and receives it into a buffer kept for that;
    /// when it matches, `take` gets the body from there. A message received that does not match
    /// goes to the mailbox, as the progress would have put it. Must run on the loop.
    func receiveDirectly(
        from source: Int, context: UInt64, tag: Int32?, giveUp: () -> Bool, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        let state = state.value
        // Sends in flight complete through the progress: leave the wait to it.
        guard source != rank, (0..<size).contains(source), state.sends.isEmpty else { return nil }
        var found: Int32 = 0, count: Int32 = 0, code: Int32 = 0
        _ = pollUntil(for: Swift.min(spinBudget, directReceiveSpin), yielding: oversubscribed, progress: {}, giveUp: giveUp) {
            code = fleet_mpi_iprobe_from(Int32(source), Self.messageTag, &found, &count)
            return code != 0 || found != 0
        }
        guard code == 0, found != 0, count >= Int32(RankMessageHeader.size), Int(count) <= Self.directLimit else { return nil }
        return state.scratch.withUnsafeMutableBytes { scratch -> Int32? in
            let code = fleet_mpi_recv(scratch.baseAddress, count, Int32(source), Self.messageTag)
            guard code == 0 else {
                failed(.rankFailed(rank: source, reason: "MPI_Recv from it failed (code \(code))"))
                return nil
            }
            let bytes = UnsafeRawBufferPointer(rebasing: scratch[..<Int(count)])
            let header = RankMessageHeader.read(from: bytes)!
            let body = UnsafeRawBufferPointer(rebasing: bytes[RankMessageHeader.size...])
            if header.context == context, tag == nil || tag == header.tag, take(body) { return header.tag }
            deliver(RankMessage(context: header.context, source: source, tag: header.tag, data: ByteBuffer(bytes: body)))
            return nil
        }
    }

    /// Waits until `done` holds: polls the library for up to the spin budget, then runs
    /// `suspend` while the loop polls every 50 µs. Must run on the loop, and `suspend` must
    /// resume there.
    nonisolated(nonsending) func wait<T>(until done: () -> Bool, orSuspend suspend: nonisolated(nonsending) () async throws -> T) async throws -> T? {
        if pollUntil(for: spinBudget, yielding: oversubscribed, progress: { progress() }, until: done) { return nil }
        let state = state.value
        state.suspended += 1
        if state.polling == nil { schedulePolling() }
        defer { state.suspended -= 1 }
        return try await suspend()
    }

    private func schedulePolling() {
        state.value.polling = loop.scheduleTask(in: .microseconds(50)) { [self] in
            progress()
            let state = state.value
            state.polling = nil
            if state.suspended > 0 || !state.sends.isEmpty { schedulePolling() }
        }
    }

    // MARK: The end

    var transport: Launcher.Transport { .library }

    /// `MPI_Finalize`, once every goodbye is exchanged. Must run on the loop.
    func close() {
        _ = fleet_mpi_finalize()
    }

    /// Ends the whole job (`MPI_Abort`), after printing why: the library's launcher then stops
    /// every rank and exits non-zero.
    func abort(_ reason: String) {
        FileHandle.standardError.write(Data("fleet-mpi: rank \(rank) failed: \(reason)\n".utf8))
        _ = fleet_mpi_abort(1)
        exit(1)
    }
}
