import CFleetMPI
import Foundation
import NIOCore

/// The links of a rank through a real MPI library (OpenMPI, MPICH), for programs run by
/// `mpirun` or `srun` — FleetMPI built with the package trait `MPI` (`swift build --traits MPI`).
///
/// Messages travel as `MPI_BYTE` buffers on `MPI_COMM_WORLD`, each carrying FleetMPI's own
/// header (context and tag), so that ``Mailbox`` matches them as it does those of the other
/// transports, and sub-communicators work the same way. The world communicator's small
/// messages of numbers (``Communicator/send(contentsOf:to:tag:)``, with a tag up to the
/// library's largest less 16), the ones whose latency counts, carry no header: the MPI tag says
/// their tag (``compactTagBase`` above it), so that the library moves only their data, as C
/// programs' do (the header had made an 8-byte message 20 bytes, which cost OpenMPI's shared
/// memory about 6% of a ping-pong). Codable messages keep the header. A message of
/// ``directLimit`` bytes or
/// more travels as two: a head of exactly that many bytes, then the rest with a tag of its
/// own. So every head fits the buffer a receive posts before the message comes, as MPI
/// programs do for their best latency (a message that arrives to a posted receive skips the
/// library's queue of unexpected ones). The library's own barrier and
/// allreduce serve the world communicator (``Communicator/barrier()``,
/// ``Communicator/allreduce(_:_:)`` on numbers), where MPI libraries have their best algorithms.
///
/// When every rank runs on one host, messages skip these links: ``World`` lays
/// ``SharedMemoryLinks`` over a window the library shares between the ranks (``nodeSegment()``),
/// and these links only start, end and abort the job (``close()``, ``abort(_:)``); the
/// collectives are FleetMPI's own then, over the rings (the library's, which block in the
/// library, would stop the rings while they wait).
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
    /// What the loop keeps: read without `NIOLoopBound`, whose getter retains and releases it
    /// (two atomic operations on every access, several per message).
    ///
    /// `nonisolated(unsafe)`: every member of these links runs on the loop (as the protocol
    /// says, and `state` asserts), so the loop thread alone touches it.
    nonisolated(unsafe) private let loopState: LoopState
    private var state: LoopState {
        assert(loop.inEventLoop, "LibraryLinks used off its loop")
        return loopState
    }
    private let deliver: @Sendable (RankMessage) -> Void
    private let event: @Sendable (RankLinkEvent) -> Void
    private let failed: @Sendable (CommunicatorError) -> Void
    /// How long a wait polls, and one on the direct path.
    private let spinBudget: SpinBudget, directSpinBudget: SpinBudget
    private let oversubscribed: Bool

    /// The MPI tags FleetMPI uses on `MPI_COMM_WORLD`: a message with its header (or its head),
    /// a goodbye, the rest of a message after its head; and from ``compactTagBase`` up, a
    /// compact message (of the world communicator, with no header). (`FLEET_MPI_BASELINE_TAG`,
    /// 4, is the C ping-pong's of ``Communicator/libraryPingPong(with:count:)``.)
    private static let messageTag: Int32 = 1
    private static let goodbyeTag: Int32 = 2
    private static let tailTag: Int32 = 3
    /// A compact message's MPI tag is its tag plus this.
    private static let compactTagBase: Int32 = 16
    /// The largest tag a compact message can have, below the library's largest MPI tag; a
    /// message with a larger one carries a header.
    private let compactTagLimit: Int32

    /// Touched on the loop thread only, so dynamic exclusivity checks are off (as in ``SharedMemoryLinks``).
    private final class LoopState {
        @exclusivity(unchecked) var sends: [Send] = []
        /// Where small messages are put together to be sent; a send that does not complete at
        /// once keeps it, and a new one takes its place.
        @exclusivity(unchecked) var sendBuffer = LibraryLinks.allocateBuffer()
        @exclusivity(unchecked) var sendRequests = LibraryLinks.allocateRequests()
        /// Where ``receiveDirectly(from:context:tag:giveUp:take:)`` receives.
        let receiveBuffer = LibraryLinks.allocateBuffer()
        /// The persistent receive (`MPI_Recv_init`) from each rank into ``receiveBuffer``, made
        /// at its first use: restarting one costs the library less than making a request per
        /// message. One slot of ``LibraryLinks/requestStride`` bytes per world rank.
        let receiveRequests: UnsafeMutableRawPointer
        /// What became of each rank's persistent receive.
        @exclusivity(unchecked) var receives: [DirectReceive]
        @exclusivity(unchecked) var suspended = 0
        @exclusivity(unchecked) var polling: Scheduled<Void>?
        /// Whether the library is finalized: nothing may call it any more.
        @exclusivity(unchecked) var closed = false

        /// The state of a world of `size` ranks, before any message.
        init(size: Int) {
            receiveRequests = .allocate(byteCount: size * LibraryLinks.requestStride, alignment: 16)
            receives = Array(repeating: .none, count: size)
        }

        deinit {
            // Whatever is still in flight at the end stays allocated: the library may read it,
            // or write into the receive buffer.
            guard sends.isEmpty, !receives.contains(.abandoned) else { return }
            sendBuffer.deallocate()
            sendRequests.deallocate()
            receiveBuffer.deallocate()
            receiveRequests.deallocate()
        }
    }

    /// The persistent receive from one rank.
    private enum DirectReceive {
        /// Not made yet.
        case none
        /// Made, and inactive between messages.
        case made
        /// Left as it was after the library failed on it: maybe still active, so never started
        /// or freed again.
        case abandoned
    }

    /// A send in flight: the library reads `bytes` until its requests (one, or two for a
    /// message sent as head and rest) complete.
    private struct Send {
        let bytes: UnsafeMutableRawBufferPointer
        let requests: UnsafeMutableRawPointer
        let count: Int
        let promise: EventLoopPromise<Void>

        /// Whether the library is done with it: then its memory is released.
        func isComplete() -> Bool {
            guard LibraryLinks.isComplete(requests, count: count) else { return false }
            bytes.deallocate()
            requests.deallocate()
            return true
        }
    }

    private static func allocateBuffer() -> UnsafeMutableRawBufferPointer {
        .allocate(byteCount: directLimit, alignment: 16)
    }

    /// Room for two requests (MPI's handles).
    private static func allocateRequests() -> UnsafeMutableRawPointer {
        .allocate(byteCount: 2 * requestStride, alignment: 16)
    }

    /// The room each request (`MPI_Request`: a pointer in OpenMPI, an integer in MPICH) gets:
    /// a constant, so that no lazy initialization is checked on every message.
    /// ``init(loop:spinBudget:deliver:event:failed:)`` checks that the library's fits.
    private static let requestStride = 16

    private static func request(_ index: Int, of requests: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        requests + index * requestStride
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
        guard fleet_mpi_request_size() <= Self.requestStride else {
            throw CommunicatorError.invalidArgument("the MPI library's requests take \(fleet_mpi_request_size()) bytes, more than FleetMPI keeps")
        }
        var rank: Int32 = 0, size: Int32 = 0, tagBound: Int32 = 0
        try Self.check(fleet_mpi_init(&rank, &size), "MPI_Init_thread")
        try Self.check(fleet_mpi_tag_upper_bound(&tagBound), "MPI_Comm_get_attr(MPI_TAG_UB)")
        self.compactTagLimit = tagBound - Self.compactTagBase
        self.rank = Int(rank)
        self.size = Int(size)
        self.loop = loop
        self.loopState = LoopState(size: Int(size))
        self.deliver = deliver
        self.event = event
        self.failed = failed
        self.spinBudget = SpinBudget(spinBudget)
        self.directSpinBudget = self.spinBudget.direct
        self.oversubscribed = isOversubscribed(ranks: Int(size))
    }

    /// A shared-memory segment for the world's ranks (``SharedMemoryLinks``), in a window the
    /// library shares between them, when they all run on this host and no rank has
    /// ``nodeRingsVariable`` set to `0`; else `nil`. Collective: every rank calls it, on the
    /// loop, right after ``init(loop:spinBudget:deliver:event:failed:)``; every rank gets the
    /// same outcome. ``close()`` frees the window.
    ///
    /// Rank 0's ring capacity counts: `FLEET_MPI_SHM_RING_BYTES` when set; else the
    /// launcher's (``Launcher/sharedMemoryRingCapacity(ranks:environment:)``), made smaller
    /// while the segment would take more than ``nodeRingsBudget`` (the window's memory lives
    /// in `/dev/shm`, which a container may keep small), and no rings at all (the library
    /// carries the messages) when even rings of 64 KiB would.
    ///
    /// - Throws: ``CommunicatorError/invalidArgument(_:)`` when rank 0's
    ///   `FLEET_MPI_SHM_RING_BYTES` makes no ring, or the library fails to share the memory.
    func nodeSegment() throws -> UnsafeMutableRawPointer? {
        let environment = ProcessInfo.processInfo.environment
        // A size that makes no ring is rank 0's error alone (the others' sizes are not used):
        // its segment is then refused on every rank alike (FLEET_MPI_RINGS_INVALID).
        var capacity = (try? Launcher.sharedMemoryRingCapacity(ranks: size, environment: environment)) ?? 0
        var wanted = environment[Self.nodeRingsVariable] != "0"
        // Rank 0's size counts, and so does its budget: the others' would only turn the rings
        // off for a size nobody uses.
        if rank == 0, environment[LaunchEnvironment.ringBytesVariable] == nil {
            let rings = UInt64(size) * UInt64(size)
            capacity = Launcher.defaultRingCapacity(rings: rings, budget: Self.nodeRingsBudget)
            if rings * capacity > Self.nodeRingsBudget { wanted = false }
        }
        var base: UnsafeMutableRawPointer?
        switch fleet_mpi_node_segment(wanted ? 1 : 0, capacity, &base) {
        case 0: return base
        case FLEET_MPI_RINGS_INVALID:
            throw CommunicatorError.invalidArgument(
                "\(LaunchEnvironment.ringBytesVariable) on rank 0 makes no ring: \(LaunchEnvironment.ringSizeRule)")
        case FLEET_MPI_RINGS_FAILED:
            throw CommunicatorError.invalidArgument(
                "the MPI library's shared window did not hold FleetMPI's rings on every rank (\(Self.nodeRingsVariable)=0 keeps messages in the library)")
        case let code:
            try Self.check(code, "sharing memory between the ranks (\(Self.nodeRingsVariable)=0 keeps messages in the library)")
            return nil
        }
    }

    /// The most memory the default rings in a shared window take: 32 MiB.
    static let nodeRingsBudget: UInt64 = 32 << 20

    /// The environment variable that, set to `0` for a rank of a job under an MPI launcher,
    /// keeps the ranks' messages in the library even when they all run on one host.
    static let nodeRingsVariable = "FLEET_MPI_NODE_RINGS"

    /// `MPI_Barrier` on `MPI_COMM_WORLD`. On the loop.
    static func barrier() throws {
        try check(fleet_mpi_barrier(), "MPI_Barrier")
    }

    /// `MPI_Allreduce` on `MPI_COMM_WORLD` of `count` numbers from `send` into `result` (in place
    /// in `result` when `send` is `nil`), with the datatype and operation `codes` name. On the
    /// loop.
    static func allreduce(
        _ send: UnsafeRawPointer?, into result: UnsafeMutableRawPointer?, count: Int, _ codes: (type: Int32, operation: Int32)
    ) throws {
        try check(fleet_mpi_allreduce(send, result, Int32(count), codes.type, codes.operation), "MPI_Allreduce")
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
        data.withUnsafeReadableBytes { bytes in start(bytes, tag: Self.messageTag, to: destination) }
    }

    /// Starts sending a message of `context` and `tag` whose body is `body`: a small one is put
    /// together in a buffer kept for that, with no allocation (compact when it can: its body
    /// alone), and started and tested in one call into the shim. Must run on the loop. Inlined
    /// into ``World/writeOnLoop(context:tag:body:to:)``, which calls it for every message.
    @inline(__always)
    func write(context: UInt64, tag: Int32, body: UnsafeRawBufferPointer, to destination: Int) -> EventLoopFuture<Void>? {
        var size = RankMessageHeader.size + body.count
        guard size < Self.directLimit else {
            return write(RankMessageHeader.message(context: context, tag: tag, body: body), to: destination)
        }
        let state = self.state
        let buffer = state.sendBuffer, requests = state.sendRequests
        var start = buffer.baseAddress!
        let mpiTag: Int32
        // Tags from 0 to the limit (one unsigned comparison): a negative one would look like
        // one of FleetMPI's own MPI tags.
        if context == Communicator.worldContext, UInt32(bitPattern: tag) <= UInt32(bitPattern: compactTagLimit) {
            size = body.count
            mpiTag = Self.compactTagBase &+ tag
        } else {
            RankMessageHeader.store(context: context, tag: tag, at: start)
            start += RankMessageHeader.size
            mpiTag = Self.messageTag
        }
        if !body.isEmpty { start.copySmall(from: body.baseAddress!, byteCount: body.count) }
        // Both fit: `size` is under `directLimit`, and `destination` is a rank of the world.
        let code = fleet_mpi_isend_now(
            buffer.baseAddress, Int32(truncatingIfNeeded: size), Int32(truncatingIfNeeded: destination), mpiTag, requests)
        if code == 0 { return nil }
        return keepInFlight(buffer, requests: requests, code: code, to: destination)
    }

    /// A send of the kept buffer that the library has not finished (or refused): it keeps the
    /// buffer and its request until the library is done with them (after a failure, for good:
    /// what was started may still read them), and new ones take their place.
    @inline(never)
    private func keepInFlight(
        _ buffer: UnsafeMutableRawBufferPointer, requests: UnsafeMutableRawPointer, code: Int32, to destination: Int
    ) -> EventLoopFuture<Void> {
        let state = self.state
        state.sendBuffer = Self.allocateBuffer()
        state.sendRequests = Self.allocateRequests()
        return inFlight(buffer, requests: requests, count: 1, code: code == FLEET_MPI_PENDING ? 0 : code, to: destination)
    }

    /// Tells every other rank that nothing more comes from this one, after what was written.
    func sayGoodbye() {
        for peer in 0..<size where peer != rank {
            _ = start(UnsafeRawBufferPointer(start: nil, count: 0), tag: Self.goodbyeTag, to: peer)
        }
    }

    /// Starts sending a copy of `bytes` with `tag` (a goodbye; a message, as head and rest when
    /// it is large). The copy is released once the library is done with it.
    private func start(_ bytes: UnsafeRawBufferPointer, tag: Int32, to destination: Int) -> EventLoopFuture<Void>? {
        let size = bytes.count
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, size), alignment: 16)
        if let base = bytes.baseAddress { buffer.baseAddress!.copyMemory(from: base, byteCount: size) }
        let requests = Self.allocateRequests()
        // A message of `directLimit` bytes or more: its head, then the rest.
        let split = tag == Self.messageTag && size >= Self.directLimit
        let base = buffer.baseAddress!
        var code = fleet_mpi_isend(base, Int32(split ? Self.directLimit : size), Int32(destination), tag, Self.request(0, of: requests))
        if code == 0, split {
            code = fleet_mpi_isend(
                base + Self.directLimit, Int32(size - Self.directLimit), Int32(destination), Self.tailTag, Self.request(1, of: requests))
        }
        let count = split ? 2 : 1
        if code == 0, Self.isComplete(requests, count: count) {
            buffer.deallocate()
            requests.deallocate()
            return nil
        }
        return inFlight(buffer, requests: requests, count: count, code: code, to: destination)
    }

    /// A send the library has not finished (`code` 0) or refused: the loop polls the library
    /// until it completes, or the job fails.
    @inline(never)
    private func inFlight(
        _ bytes: UnsafeMutableRawBufferPointer, requests: UnsafeMutableRawPointer, count: Int, code: Int32, to destination: Int
    ) -> EventLoopFuture<Void> {
        guard code == 0 else {
            let error = CommunicatorError.rankFailed(rank: destination, reason: "the MPI library failed to send to it (code \(code))")
            failed(error)
            return loop.makeFailedFuture(error)
        }
        let state = self.state
        let promise = loop.makePromise(of: Void.self)
        state.sends.append(Send(bytes: bytes, requests: requests, count: count, promise: promise))
        // The library moves a large message on only while it is called: the loop polls it
        // until the send completes, whether or not anything waits meanwhile.
        if state.polling == nil { schedulePolling() }
        return promise.futureResult
    }

    /// Whether the first `count` of `requests` have completed.
    private static func isComplete(_ requests: UnsafeMutableRawPointer, count: Int) -> Bool {
        (0..<count).allSatisfy { index in
            var done: Int32 = 0
            return fleet_mpi_test(request(index, of: requests), &done) == 0 && done != 0
        }
    }

    /// Whether every send has completed. Must run on the loop.
    var allWritten: Bool { state.sends.isEmpty }

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
            switch tag {
            case Self.goodbyeTag:
                event(.goodbye(Int(source)))
                continue
            case Self.messageTag:
                if Int(count) == Self.directLimit, !receiveRest(from: Int(source), into: &buffer) { return }
            case Self.compactTagBase...:
                deliver(Self.compactMessage(tag: tag, from: Int(source), data: buffer))
                continue
            default:
                failUnknown(tag: tag, from: Int(source))
                continue
            }
            guard let header = RankMessageHeader.read(from: &buffer) else {
                failed(.malformedMessage(from: Int(source), "a message shorter than its header from the MPI library"))
                continue
            }
            deliver(RankMessage(context: header.context, source: Int(source), tag: header.tag, data: buffer))
        }
        completeSends()
    }

    /// Completes the sends the library is done with.
    private func completeSends() {
        let state = self.state
        guard !state.sends.isEmpty else { return }
        state.sends.removeAll { send in
            guard send.isComplete() else { return false }
            send.promise.succeed()
            return true
        }
    }

    /// The message a compact one of MPI tag `mpiTag` (``compactTagBase`` or above) carries.
    private static func compactMessage(tag mpiTag: Int32, from source: Int, data: ByteBuffer) -> RankMessage {
        RankMessage(context: Communicator.worldContext, source: source, tag: mpiTag &- compactTagBase, data: data)
    }

    /// Fails the job for a message of an MPI tag that no message of FleetMPI's starts with.
    private func failUnknown(tag mpiTag: Int32, from source: Int) {
        failed(.malformedMessage(from: source, "a message of MPI tag \(mpiTag), which FleetMPI does not send, or the rest of a message without its head"))
    }

    /// Receives the rest of a message whose head, ``directLimit`` bytes, is in `buffer`: the
    /// sender started it right after the head.
    private func receiveRest(from source: Int, into buffer: inout ByteBuffer) -> Bool {
        var count: Int32 = 0
        var code = fleet_mpi_probe_from(Int32(source), Self.tailTag, &count)
        if code == 0 {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(count)) { target in
                code = fleet_mpi_recv(target.baseAddress, count, Int32(source), Self.tailTag)
                return Int(count)
            }
        }
        guard code == 0 else {
            failed(.rankFailed(rank: source, reason: "receiving the rest of a message from it failed (code \(code))"))
            return false
        }
        return true
    }

    func poll() { progress() }

    /// The size of the buffers a message is put together in and received into, and of a large
    /// message's head.
    static let directLimit = 16 << 10

    /// The direct path (``PolledLinks/receiveDirectly(from:context:tag:giveUp:take:)``): starts
    /// the persistent receive from `source` (of any MPI tag, so that messages with and without
    /// a header keep their order) into a buffer kept for that, before the message comes, and
    /// tests it; when the message matches, `take` gets its body from there. One that does not
    /// match goes to the mailbox, as the progress would have put it, and a goodbye is told as
    /// the progress tells it. A receive still empty when the wait ends is cancelled. Must run
    /// on the loop.
    @inline(__always)
    func receiveDirectly(
        from source: Int, context: UInt64, tag: Int32?, giveUp: () -> Bool, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        let state = self.state
        guard source != rank, (0..<size).contains(source) else { return nil }
        // Sends still in flight go on while this receive is tested (each test drives the
        // library); the loop's polling completes them.
        if !state.sends.isEmpty { completeSends() }
        let request = Self.request(source, of: state.receiveRequests), buffer = state.receiveBuffer
        var code: Int32 = 0
        switch state.receives[source] {
        case .made: break
        case .none:
            code = fleet_mpi_recv_init(buffer.baseAddress, Int32(Self.directLimit), Int32(source), FLEET_MPI_ANY_TAG, request)
            if code == 0 { state.receives[source] = .made }
        case .abandoned: return nil
        }
        if code == 0 { code = fleet_mpi_start(request) }
        guard code == 0 else {
            failed(.rankFailed(rank: source, reason: "receiving from it failed (code \(code))"))
            return nil
        }
        // Started: the receive is active until a test finds it done or a cancel settles it.
        var test = fleet_mpi_test_result()
        _ = pollUntil(for: directSpinBudget, yielding: oversubscribed, relaxing: false, progress: {}, giveUp: giveUp) {
            test = fleet_mpi_test_received(request)
            return test.code != 0 || test.done != 0
        }
        // The common case, kept short: a compact message the caller takes.
        if test.done != 0, test.code == 0, test.tag >= Self.compactTagBase, context == Communicator.worldContext {
            let received = test.tag &- Self.compactTagBase
            if tag == nil || tag == received, take(UnsafeRawBufferPointer(start: state.receiveBuffer.baseAddress, count: Int(test.count))) {
                return received
            }
        }
        return settle(test, of: request, from: source, context: context, tag: tag, take: take)
    }

    /// The rest of ``receiveDirectly(from:context:tag:giveUp:take:)`` once its tests ended with
    /// `test`: a receive still empty is cancelled; a message not taken goes to the mailbox (a
    /// goodbye is told), and one with a header is offered to `take`. A compact message that
    /// came with `test` was offered already: its offer is not repeated.
    @inline(never)
    private func settle(
        _ test: fleet_mpi_test_result, of request: UnsafeMutableRawPointer, from source: Int, context: UInt64, tag: Int32?,
        take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        let declined = test.done != 0
        let state = self.state
        var code = test.code, count = test.count, mpiTag = test.tag
        if code == 0, test.done == 0 {
            var cancelled: Int32 = 0
            code = fleet_mpi_cancel_receive(request, &cancelled, &count, &mpiTag)
            if code == 0, cancelled != 0 { return nil }
        }
        guard code == 0 else {
            // The library failed on the started receive, which may still be active.
            state.receives[source] = .abandoned
            failed(.rankFailed(rank: source, reason: "receiving from it failed (code \(code))"))
            return nil
        }
        let head = UnsafeRawBufferPointer(rebasing: state.receiveBuffer[..<Int(count)])
        switch mpiTag {
        case Self.compactTagBase...:
            let received = mpiTag &- Self.compactTagBase
            if !declined, context == Communicator.worldContext, tag == nil || tag == received, take(head) { return received }
            deliver(Self.compactMessage(tag: mpiTag, from: source, data: ByteBuffer(bytes: head)))
            return nil
        case Self.messageTag: break
        case Self.goodbyeTag:
            event(.goodbye(source))
            return nil
        default:
            failUnknown(tag: mpiTag, from: source)
            return nil
        }
        guard Int(count) == Self.directLimit else { return offer(head, from: source, context: context, tag: tag, take: take) }
        var whole = ByteBuffer(bytes: head)
        guard receiveRest(from: source, into: &whole) else { return nil }
        return whole.withUnsafeReadableBytes { offer($0, from: source, context: context, tag: tag, take: take) }
    }

    /// A message taken on the direct path: `take` gets its body when it is of `context` and
    /// `tag`; else it goes to the mailbox.
    private func offer(
        _ bytes: UnsafeRawBufferPointer, from source: Int, context: UInt64, tag: Int32?, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        guard let header = RankMessageHeader.read(from: bytes) else {
            failed(.malformedMessage(from: source, "a message shorter than its header from the MPI library"))
            return nil
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes[RankMessageHeader.size...])
        if header.context == context, tag == nil || tag == header.tag, take(body) { return header.tag }
        deliver(RankMessage(context: header.context, source: source, tag: header.tag, data: ByteBuffer(bytes: body)))
        return nil
    }

    /// Waits until `done` holds: polls the library for up to the spin budget, then runs
    /// `suspend` while the loop polls every 50 µs. Must run on the loop, and `suspend` must
    /// resume there.
    nonisolated(nonsending) func wait<T>(until done: () -> Bool, orSuspend suspend: nonisolated(nonsending) () async throws -> T) async throws -> T? {
        if pollUntil(for: spinBudget, yielding: oversubscribed, progress: { progress() }, until: done) { return nil }
        let state = self.state
        state.suspended += 1
        if state.polling == nil { schedulePolling() }
        defer { state.suspended -= 1 }
        return try await suspend()
    }

    private func schedulePolling() {
        state.polling = loop.scheduleTask(in: .microseconds(50)) { [self] in
            let state = self.state
            guard !state.closed else { return }
            progress()
            state.polling = nil
            if state.suspended > 0 || !state.sends.isEmpty { schedulePolling() }
        }
    }

    // MARK: The end

    var transport: Launcher.Transport { .library }

    /// Frees the shared window of ``nodeSegment()``, if any (collective), then `MPI_Finalize`,
    /// once every goodbye is exchanged; once. Must run on the loop.
    func close() {
        let state = self.state
        guard !state.closed else { return }
        state.polling?.cancel()
        state.polling = nil
        state.closed = true
        // Every direct receive completed or was cancelled, but for those the library failed on
        // (abandoned, left as they are): the persistent ones are inactive.
        for source in 0..<size where state.receives[source] == .made {
            _ = fleet_mpi_request_free(Self.request(source, of: state.receiveRequests))
        }
        _ = fleet_mpi_node_segment_free()
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
