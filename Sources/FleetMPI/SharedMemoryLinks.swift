import CFleetMPI
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization

/// The links of a rank to the others on the same host through shared memory: one
/// single-producer, single-consumer ring per ordered pair of ranks in a segment the launcher
/// made (or, under `mpirun`, an MPI library's shared window), and a doorbell per rank
/// (CFleetShm.h).
///
/// A rank that waits (for a message, for room to write, for goodbyes) polls its rings on its own
/// event loop thread — a message a few hundred nanoseconds old is taken at once, with no system
/// call on either side. Polling stops after ``spinBudget``; the rank then *parks*: it raises the
/// flag on its doorbell and lets its loop sleep. The next rank that writes to it (or reads from
/// it, freeing room) sees the flag and rings the bell — a futex — which wakes this rank's bell
/// thread, which has the loop drain the rings. A rank that is busy computing leaves messages in
/// its rings until its next operation, as MPI libraries do.
///
/// A waiting rank polls the header of the next record in each ring, which the writer stores
/// last: a small message and its readiness arrive in one cache line (CFleetShm.h).
///
/// Messages larger than a ring travel as fragments, written as room frees up; messages to one
/// rank leave in the order written.
final class SharedMemoryLinks: PolledLinks {
    let rank: Int
    let size: Int
    private let segment: Segment
    private let loop: any EventLoop
    /// What the loop thread alone touches: messages being reassembled, messages waiting for room.
    private let state: NIOLoopBound<LoopState>
    private let deliver: @Sendable (RankMessage) -> Void
    /// A message is arriving in pieces: a receive whose sink takes its body, if any
    /// (``Mailbox/claim(source:context:tag:length:)``).
    private let claim: @Sendable (_ source: Int, _ context: UInt64, _ tag: Int32, _ length: Int) -> PostedReceive?
    /// A claimed receive's body is all in its sink (``Mailbox/completeClaimed(_:context:source:tag:)``).
    private let completeClaimed: @Sendable (PostedReceive, _ context: UInt64, _ source: Int, _ tag: Int32) -> Void
    private let event: @Sendable (RankLinkEvent) -> Void
    private let failed: @Sendable (CommunicatorError) -> Void
    private let stopped = Atomic<Bool>(false)
    /// Whether the bell thread has ended: it touches the segment no more.
    private let bellStopped = DispatchSemaphore(value: 0)
    /// The MPI library whose shared window holds the segment, if one does.
    private let library: LibraryLinks?
    /// How long a wait polls before it parks, and one on the direct path.
    let spinBudget: SpinBudget, directSpinBudget: SpinBudget
    /// More ranks than processors: polling yields the processor at every turn, so that a
    /// rank with work to do gets it.
    private let oversubscribed: Bool

    /// The mapped segment. Its address is fixed for the life of the links (a launcher's segment
    /// is never unmapped; a library's window is freed by ``close()``, after the bell thread has
    /// ended, when nothing uses it any more), and the rings and doorbells in it are used only
    /// through CFleetShm's functions,
    /// whose protocol makes them safe to use from every rank at once: each ring has one producer
    /// and one consumer, and every index is read and written with atomics.
    private struct Segment: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
    }

    /// Touched on the loop thread only (``NIOLoopBound`` checks), so the compiler's dynamic
    /// exclusivity checks, a thread-local lookup per access on the polling path, are off.
    private final class LoopState {
        /// A message from each rank whose first fragments have arrived.
        @exclusivity(unchecked) var partial: [ByteBuffer?]
        /// A message from each rank whose body goes into a receive's sink as it arrives.
        @exclusivity(unchecked) var direct: [Direct?]
        /// Messages to each rank still to be written, oldest first.
        @exclusivity(unchecked) var outbound: [[Outbound]]
        /// Ranks with messages waiting in `outbound`.
        @exclusivity(unchecked) var blocked: Set<Int> = []
        /// Whether each rank said goodbye.
        @exclusivity(unchecked) var finished: [Bool]
        /// Tasks of this rank suspended after their spin ran out: while there are any, the rank
        /// stays parked, so that what they wait for rings the bell.
        @exclusivity(unchecked) var suspended = 0

        init(size: Int) {
            partial = Array(repeating: nil, count: size)
            direct = Array(repeating: nil, count: size)
            outbound = Array(repeating: [], count: size)
            finished = Array(repeating: false, count: size)
        }
    }

    /// A message whose body goes to its receive's sink, piece by piece.
    private struct Direct {
        let receive: PostedReceive
        let sink: MessageSink
        let context: UInt64
        let tag: Int32
    }

    /// A message (or a goodbye) partly written.
    private struct Outbound {
        /// What is still to be written.
        var data: ByteBuffer
        /// The message's whole length.
        let total: Int
        let goodbye: Bool
        var promise: EventLoopPromise<Void>?

        init(data: ByteBuffer, goodbye: Bool = false) {
            self.data = data
            self.total = data.readableBytes
            self.goodbye = goodbye
        }

        /// The rest of a message of `total` bytes whose first fragments are written.
        init(rest: ByteBuffer, total: Int) {
            self.data = rest
            self.total = total
            self.goodbye = false
        }
    }

    /// Maps the segment for `ranks` ranks in file descriptor `fd` (inherited from the
    /// launcher), and closes the descriptor.
    ///
    /// - Throws: ``CommunicatorError/notLaunched(_:)`` when it cannot be mapped, or holds
    ///   something no launcher of this job made.
    static func mapSegment(fd: Int32, ranks: Int) throws -> UnsafeMutableRawPointer {
        var capacity: UInt64 = 0, mapped = 0, error: Int32 = 0
        guard let base = fleet_shm_map(fd, UInt32(ranks), &capacity, &mapped, &error) else {
            throw CommunicatorError.notLaunched(
                "cannot map the shared-memory segment (descriptor \(fd)): \(String(cString: strerror(error)))")
        }
        Glibc.close(fd)
        return base
    }

    /// Links through the segment at `base`, mapped already (and never unmapped while they
    /// live), and starts the rank's bell thread. Maps every page of the segment into this
    /// process first (a page fault on a ring's first lap costs a small message about 20 ns).
    /// Must run on `loop`.
    ///
    /// - Parameter library: the MPI library whose shared window holds the segment, when it
    ///   does: it ends the job when a rank fails (``abort(_:)``), and is closed after the rings
    ///   (``close()``), which frees the window.
    init(
        segment base: UnsafeMutableRawPointer, rank: Int, size: Int, loop: any EventLoop, spinBudget: Duration,
        library: LibraryLinks?,
        deliver: @escaping @Sendable (RankMessage) -> Void,
        claim: @escaping @Sendable (Int, UInt64, Int32, Int) -> PostedReceive?,
        completeClaimed: @escaping @Sendable (PostedReceive, UInt64, Int, Int32) -> Void,
        event: @escaping @Sendable (RankLinkEvent) -> Void,
        failed: @escaping @Sendable (CommunicatorError) -> Void
    ) {
        fleet_shm_touch(base, UInt32(rank))
        self.segment = Segment(base: base)
        self.rank = rank
        self.size = size
        self.loop = loop
        self.library = library
        self.state = NIOLoopBound(LoopState(size: size), eventLoop: loop)
        self.deliver = deliver
        self.claim = claim
        self.completeClaimed = completeClaimed
        self.event = event
        self.failed = failed
        self.spinBudget = SpinBudget(spinBudget)
        self.directSpinBudget = self.spinBudget.direct
        self.oversubscribed = isOversubscribed(ranks: size)
        startBellThread()
    }

    // MARK: Writing

    /// Writes `data` (a message with its header) to `destination`, or as much as fits now.
    /// Must run on the loop.
    ///
    /// - Returns: `nil` when all of it is written; else a future that completes once it is.
    func write(_ data: ByteBuffer, to destination: Int) -> EventLoopFuture<Void>? {
        let state = state.value
        var message = Outbound(data: data)
        if state.outbound[destination].isEmpty, push(&message, to: destination) { return nil }
        return queue(message, to: destination)
    }

    /// Writes a message of `context` and `tag` with `body` to `destination` straight from
    /// `body`'s memory, as far as the ring has room now; only what does not fit is copied, into
    /// a buffer that waits for room. Must run on the loop.
    ///
    /// - Returns: as ``write(_:to:)``.
    func write(context: UInt64, tag: Int32, body: UnsafeRawBufferPointer, to destination: Int) -> EventLoopFuture<Void>? {
        let state = state.value
        guard state.outbound[destination].isEmpty else {
            return write(RankMessageHeader.message(context: context, tag: tag, body: body), to: destination)
        }
        // The header on the stack: small messages take this path too, empty ones (a barrier's
        // signal) included.
        let headerCount = RankMessageHeader.size
        let total = headerCount + body.count
        return RankMessageHeader.withBytes(context: context, tag: tag) { head in
            var sent = 0
            while sent < total {
                let flags = UInt32(FLEET_SHM_LAST) | (sent == 0 ? UInt32(FLEET_SHM_FIRST) : 0)
                let inHeader = Swift.min(sent, headerCount), inBody = Swift.max(0, sent - headerCount)
                let written = fleet_shm_put_parts(
                    segment.base, UInt32(rank), UInt32(destination), flags, UInt64(total),
                    head.baseAddress! + inHeader, UInt64(headerCount - inHeader),
                    body.baseAddress.map { $0 + inBody }, UInt64(body.count - inBody))
                guard written >= 0 else { break }
                sent += Int(written)
            }
            if sent == total { return nil }
            var rest = ByteBufferAllocator().buffer(capacity: total - sent)
            if sent < headerCount { rest.writeBytes(UnsafeRawBufferPointer(rebasing: head[sent...])) }
            rest.writeBytes(UnsafeRawBufferPointer(rebasing: body[Swift.max(0, sent - headerCount)...]))
            return queue(Outbound(rest: rest, total: total), to: destination)
        }
    }

    /// Queues the rest of a message to be written as room frees up; the future completes then.
    private func queue(_ message: Outbound, to destination: Int) -> EventLoopFuture<Void> {
        let state = state.value
        var message = message
        let promise = loop.makePromise(of: Void.self)
        message.promise = promise
        state.outbound[destination].append(message)
        state.blocked.insert(destination)
        return promise.futureResult
    }

    /// Tells every other rank that nothing more comes from this one, after what was written.
    func sayGoodbye() {
        let state = state.value
        for peer in 0..<size where peer != rank {
            var goodbye = Outbound(data: ByteBuffer(), goodbye: true)
            if state.outbound[peer].isEmpty, push(&goodbye, to: peer) { continue }
            state.outbound[peer].append(goodbye)
            state.blocked.insert(peer)
        }
    }

    /// Writes fragments of `message` while the ring has room; `true` once all of it is written.
    private func push(_ message: inout Outbound, to destination: Int) -> Bool {
        let from = UInt32(rank), to = UInt32(destination)
        if message.goodbye {
            return fleet_shm_put(segment.base, from, to, UInt32(FLEET_SHM_GOODBYE), 0, nil, 0) >= 0
        }
        let total = UInt64(message.total)
        while message.data.readableBytes > 0 {
            let first = message.data.readableBytes == message.total
            let flags = UInt32(FLEET_SHM_LAST) | (first ? UInt32(FLEET_SHM_FIRST) : 0)
            let written = message.data.withUnsafeReadableBytes { bytes in
                fleet_shm_put(segment.base, from, to, flags, total, bytes.baseAddress, UInt64(bytes.count))
            }
            guard written >= 0 else { return false }
            message.data.moveReaderIndex(forwardBy: Int(written))
        }
        return true
    }

    // MARK: Reading and waiting

    /// Takes the records waiting in this rank's rings (a bounded number from each) and writes
    /// what waits for room. Must run on the loop.
    ///
    /// - Returns: whether it took any record (more may wait).
    @discardableResult
    func progress() -> Bool {
        let state = state.value
        var took = false
        for source in 0..<size where source != rank && !state.finished[source]
            && fleet_shm_pending(segment.base, UInt32(source), UInt32(rank)) != 0 {
            if drain(from: source, state) {
                took = true
                fleet_shm_notify(segment.base, UInt32(source))
            }
        }
        guard !state.blocked.isEmpty else { return took }
        for destination in state.blocked {
            while var message = state.outbound[destination].first {
                let done = push(&message, to: destination)
                state.outbound[destination][0] = message
                guard done else { break }
                state.outbound[destination].removeFirst()
                message.promise?.succeed()
            }
            if state.outbound[destination].isEmpty { state.blocked.remove(destination) }
        }
        return took
    }

    func poll() { progress() }

    /// The direct path of a small message (``PolledLinks/receiveDirectly(from:context:tag:giveUp:take:)``):
    /// polls the ring from `source` alone, and when its next record is a whole message that
    /// matches, hands `take` the body in the ring. No buffer of its own, no mailbox. Must run on
    /// the loop.
    func receiveDirectly(
        from source: Int, context: UInt64, tag: Int32?, giveUp: () -> Bool, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        let state = state.value
        guard source != rank, (0..<size).contains(source), state.partial[source] == nil, state.direct[source] == nil,
              !state.finished[source], state.blocked.isEmpty
        else { return nil }
        let from = UInt32(source), to = UInt32(rank)
        fleet_shm_unpark(segment.base, to)
        var payload: UnsafePointer<UInt8>?
        var length: UInt32 = 0, flags: UInt32 = 0, total: UInt64 = 0
        let arrived = pollUntil(
            for: directSpinBudget, yielding: oversubscribed, progress: {}, giveUp: giveUp
        ) {
            fleet_shm_peek(segment.base, from, to, &payload, &length, &flags, &total) == 1
        }
        guard arrived else { return nil }
        let whole = UInt32(FLEET_SHM_FIRST) | UInt32(FLEET_SHM_LAST)
        let bytes = UnsafeRawBufferPointer(start: payload, count: Int(length))
        guard flags & whole == whole, flags & UInt32(FLEET_SHM_GOODBYE) == 0, total == UInt64(length),
              let header = RankMessageHeader.read(from: bytes), header.context == context, tag == nil || tag == header.tag,
              take(UnsafeRawBufferPointer(rebasing: bytes[RankMessageHeader.size...]))
        else { return nil }
        fleet_shm_consume(segment.base, from, to)
        fleet_shm_notify(segment.base, from)
        // Other tasks of this rank still wait on the bell: stay reachable by it.
        if state.suspended > 0 { park() }
        return header.tag
    }

    /// Parks, then takes everything waiting, so that no record is left behind unseen: the
    /// writers of what comes later see the flag and ring.
    private func park() {
        fleet_shm_park(segment.base, UInt32(rank))
        var turns = 0
        while progress() {
            turns += 1
            // A writer that keeps writing: look again soon instead of holding the loop.
            if turns == 1024 {
                loop.execute { self.woken() }
                return
            }
        }
    }

    /// Takes the records waiting from `source`; `true` when it took any.
    private func drain(from source: Int, _ state: LoopState) -> Bool {
        let from = UInt32(source), to = UInt32(rank)
        var payload: UnsafePointer<UInt8>?
        var length: UInt32 = 0, flags: UInt32 = 0, total: UInt64 = 0
        var took = 0
        // A bounded number per turn, so that one busy sender does not starve the others.
        while took < 64, fleet_shm_peek(segment.base, from, to, &payload, &length, &flags, &total) == 1 {
            took += 1
            let bytes = UnsafeRawBufferPointer(start: payload, count: Int(length))
            if flags & UInt32(FLEET_SHM_GOODBYE) != 0 {
                fleet_shm_consume(segment.base, from, to)
                state.finished[source] = true
                event(.goodbye(source))
                return true
            }
            let last = flags & UInt32(FLEET_SHM_LAST) != 0
            if flags & UInt32(FLEET_SHM_FIRST) == 0, let direct = state.direct[source] {
                // The rest of a body that goes to a sink.
                direct.sink.take(bytes)
                fleet_shm_consume(segment.base, from, to)
                if last { finishDirect(from: source, state) }
                continue
            }
            var whole: ByteBuffer?
            if flags & UInt32(FLEET_SHM_FIRST) != 0 {
                guard total <= UInt64(World.maximumMessageSize), UInt64(length) <= total else {
                    fleet_shm_consume(segment.base, from, to)
                    failed(.malformedMessage(from: source, "a message of \(total) bytes in shared memory, over the limit"))
                    return true
                }
                if beginDirect(from: source, bytes, total: Int(total), state) {
                    fleet_shm_consume(segment.base, from, to)
                    if last { finishDirect(from: source, state) }
                    continue
                }
                var buffer = ByteBufferAllocator().buffer(capacity: Int(total))
                buffer.writeBytes(bytes)
                if flags & UInt32(FLEET_SHM_LAST) != 0 { whole = buffer } else { state.partial[source] = buffer }
            } else if state.partial[source] != nil {
                state.partial[source]!.writeBytes(bytes)
                if flags & UInt32(FLEET_SHM_LAST) != 0 {
                    whole = state.partial[source]
                    state.partial[source] = nil
                }
            } else {
                fleet_shm_consume(segment.base, from, to)
                failed(.malformedMessage(from: source, "a fragment without its first part in shared memory"))
                return true
            }
            fleet_shm_consume(segment.base, from, to)
            if var message = whole {
                guard let header = RankMessageHeader.read(from: &message) else {
                    failed(.malformedMessage(from: source, "a message shorter than its header in shared memory"))
                    continue
                }
                deliver(RankMessage(context: header.context, source: source, tag: header.tag, data: message))
            }
        }
        return took > 0
    }

    /// The first piece of a message from `source`: when a posted receive's sink takes its body,
    /// hands it this piece's part of the body and returns `true`.
    private func beginDirect(from source: Int, _ bytes: UnsafeRawBufferPointer, total: Int, _ state: LoopState) -> Bool {
        let header = RankMessageHeader.size
        guard total > header, let (context, tag) = RankMessageHeader.read(from: bytes),
              let receive = claim(source, context, tag, total - header), let sink = receive.sink else { return false }
        sink.take(UnsafeRawBufferPointer(rebasing: bytes[header...]))
        state.direct[source] = Direct(receive: receive, sink: sink, context: context, tag: tag)
        return true
    }

    /// The last piece of a message that went to a sink has arrived.
    private func finishDirect(from source: Int, _ state: LoopState) {
        guard let direct = state.direct[source] else { return }
        state.direct[source] = nil
        completeClaimed(direct.receive, direct.context, source, direct.tag)
    }

    /// Waits until `done` holds: polls the rings for up to the spin budget, and if that was not
    /// enough, parks and runs `suspend`, which waits for the same thing to be signalled (a
    /// message delivered, a write completed) while the bell drives the rings. Must run on the
    /// loop, and `suspend` must resume there.
    nonisolated(nonsending) func wait<T>(until done: () -> Bool, orSuspend suspend: nonisolated(nonsending) () async throws -> T) async throws -> T? {
        if spin(until: done) { return nil }
        state.value.suspended += 1
        defer { state.value.suspended -= 1 }
        return try await suspend()
    }

    /// Polls until `done` holds or the spin budget is spent. Must run on the loop.
    ///
    /// - Returns: whether `done` held. When not, the rank is parked, and the caller suspends
    ///   (``wait(until:orSuspend:)``). When it did, the rank stays parked only if other tasks
    ///   of it still wait or writes wait for room.
    private func spin(until done: () -> Bool) -> Bool {
        fleet_shm_unpark(segment.base, UInt32(rank))
        let succeeded = pollUntil(for: spinBudget, yielding: oversubscribed, progress: { progress() }, until: done)
        let state = state.value
        if !succeeded || state.suspended > 0 || !state.blocked.isEmpty {
            // Whatever came between the last look and the flag: its writer did not see the flag.
            park()
        }
        return succeeded || done()
    }

    /// The bell rang: drain the rings and park again. Runs on the loop.
    private func woken() {
        guard !stopped.load(ordering: .relaxed) else { return }
        park()
    }

    /// A thread that sleeps on this rank's bell and has the loop drain the rings when it rings.
    private func startBellThread() {
        let thread = Thread { [self] in
            var seen = fleet_shm_bell(segment.base, UInt32(rank))
            while !stopped.load(ordering: .acquiring) {
                fleet_shm_wait_bell(segment.base, UInt32(rank), seen, 250)
                let now = fleet_shm_bell(segment.base, UInt32(rank))
                guard now != seen else { continue }
                seen = now
                loop.execute { self.woken() }
            }
            bellStopped.signal()
        }
        thread.name = "fleet-mpi-bell-\(rank)"
        thread.start()
    }

    /// Whether every message handed to ``write(_:to:)`` (and every goodbye) is written.
    /// Must run on the loop.
    var allWritten: Bool { state.value.blocked.isEmpty }

    /// The job failed: writes still waiting for room never complete; they fail with `error`.
    /// Must run on the loop.
    func abandon(_ error: CommunicatorError) {
        let state = state.value
        for destination in state.blocked {
            for message in state.outbound[destination] { message.promise?.fail(error) }
            state.outbound[destination] = []
        }
        state.blocked = []
    }

    var transport: Launcher.Transport { .sharedMemory }

    /// The launcher ends the job when a rank fails; in a window of an MPI library, the library
    /// does (``LibraryLinks/abort(_:)``).
    func abort(_ reason: String) {
        library?.abort(reason)
    }

    /// Stops the bell thread. Messages already written stay readable by their ranks. In a
    /// window of an MPI library, waits for the thread to end, then closes the library, which
    /// frees the window (collective: every rank closes) and finalizes.
    func close() {
        stopped.store(true, ordering: .releasing)
        fleet_shm_ring(segment.base, UInt32(rank))
        guard let library else { return }
        // Freeing the window unmaps the segment: not before the thread has ended. It wakes at
        // once (the ring), and sleeps at most 250 ms between looks anyway.
        bellStopped.wait()
        library.close()
    }
}
