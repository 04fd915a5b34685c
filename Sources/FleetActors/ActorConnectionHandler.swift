import Distributed
import FleetWire
import Logging
import NIOCore

/// The FleetActors end of a connection's pipeline, after FleetWire's handlers: keeps the calls
/// this side waits for, starts the calls the peer makes, and fails everything in flight at once
/// when the connection ends.
///
/// Every method runs on the channel's event loop.
final class ActorConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private let system: FleetActorSystem
    private let logger: Logger
    /// Set right after creation; cleared when the channel closes, which breaks the cycle.
    var connection: ActorConnection?
    private var context: ChannelHandlerContext?

    /// Calls this side made, by call ID.
    @exclusivity(unchecked) private var pending: [UInt64: PendingCall] = [:]
    /// The earliest deadline the timer is set for, and the timer.
    private var armedDeadline = NIODeadline.distantFuture
    private var deadlineTimer: Scheduled<Void>?
    /// Calls the peer made that are running here, by call ID; the task is `nil` while it is
    /// being started (a call can finish before its task handle exists).
    @exclusivity(unchecked) private var running: [UInt64: Task<Void, Never>?] = [:]
    /// Local actors the peer holds references to (sent in calls or replies), by number: kept
    /// alive until the peer releases them, or the connection closes.
    @exclusivity(unchecked) private var leases: [UInt64: Lease] = [:]

    /// A local actor the peer holds, and how many times its ID was sent over this connection.
    private struct Lease {
        let actor: any DistributedActor
        var sent: UInt64
    }

    private let introduction: EventLoopPromise<NodeID>
    private var peer: NodeID?
    private var decoder: BinaryDecoder?
    /// Why the connection ended; calls started after that fail with it.
    private var closeError: (any Error)?

    @exclusivity(unchecked) private var reading = false
    /// The target names of calls received lately (read on the loop only).
    @exclusivity(unchecked) private var targetNames = TargetNames()
    @exclusivity(unchecked) private var flushNeeded = false
    @exclusivity(unchecked) private var flushScheduled = false
    @exclusivity(unchecked) private var lastInbound = NIODeadline.now()
    private var heartbeat: Scheduled<Void>?
    /// Polls for the peer's answer before the loop sleeps; `nil` when turned off.
    private var busyPoll: BusyPoll?
    /// Runs this connection's work on its loop.
    private let loopExecutor: EventLoopTaskExecutor
    /// Whether the calls the peer makes run on the loop (else on the global concurrent executor).
    private let callsOnLoop: Bool

    init(system: FleetActorSystem, eventLoop: any EventLoop, executor: EventLoopTaskExecutor) {
        self.system = system
        self.callsOnLoop = system.configuration.callExecution == .eventLoop
        self.loopExecutor = executor
        self.logger = system.configuration.wire.logger
        self.introduction = eventLoop.makePromise(of: NodeID.self)
    }

    /// Completes with the peer's node when it has introduced itself.
    var introduced: EventLoopFuture<NodeID> { introduction.futureResult }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A peer that authenticates but never introduces itself is not an actor system.
        let limit = system.configuration.wire.handshakeTimeout * 2
        context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(limit)) { [self] in
            guard peer == nil, closeError == nil else { return }
            violation(WireError.unexpectedFrame(.introduce, expected: "an introduction within \(limit)"))
        }
    }

    /// The handshake succeeded: introduce this side and start the heartbeat.
    func authenticated() {
        guard let context else { return }
        if let frame = try? Frame(kind: .introduce, encoding: Introduction(node: system.node)) {
            write(frame)
        }
        busyPoll = BusyPoll(channel: context.channel, budget: system.configuration.wire.busyPoll)
        if let interval = system.configuration.heartbeatInterval {
            scheduleBeat(context: context, interval: interval)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let error = closeError ?? RemoteCallError.connectionLost(reason: "the peer closed the connection")
        closeError = error
        heartbeat?.cancel()
        heartbeat = nil
        busyPoll?.release()
        busyPoll = nil
        deadlineTimer?.cancel()
        deadlineTimer = nil
        introduction.fail(error)
        let calls = pending.values
        pending = [:]
        for call in calls { call.fail(error) }
        let tasks = running.values
        running = [:]
        for task in tasks { task?.cancel() }
        leases = [:]
        if let connection {
            system.connectionClosed(connection)
        }
        connection = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeError == nil {
            closeError = RemoteCallError.connectionLost(reason: "\(error)")
        }
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastInbound = .now()
        reading = true
        switch frame.kind {
        case .reply: received(reply: frame.payload)
        case .call: received(call: frame.payload)
        case .cancel: received(cancel: frame.payload)
        case .release: received(release: frame.payload)
        case .introduce: received(introduction: frame)
        case .pong, .ping: break
        case .goodbye:
            closeError = closeError ?? RemoteCallError.connectionLost(reason: "the peer said goodbye")
            context.close(promise: nil)
        case .error:
            let reason = (try? frame.decode(String.self)) ?? "no reason given"
            closeError = closeError ?? RemoteCallError.connectionLost(reason: "the peer reported: \(reason)")
            context.close(promise: nil)
        default:
            violation(WireError.unexpectedFrame(frame.kind, expected: "a FleetActors frame"))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        if flushNeeded {
            flushNeeded = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    // MARK: Calls this side makes

    func start(
        _ call: PendingCall, _ continuation: UnsafeContinuation<ByteBuffer, any Error>, payload: ByteBuffer,
        keepingAlive actors: [any DistributedActor]
    ) {
        if let closeError {
            return continuation.resume(throwing: closeError)
        }
        if call.abandoned {
            return continuation.resume(throwing: CancellationError())
        }
        let now = NIODeadline.now()
        let deadline = now + TimeAmount(call.timeout)
        call.arm(continuation, deadline: deadline)
        pending[call.id] = call
        if deadline < armedDeadline { armDeadlineTimer(at: deadline) }
        keepAlive(actors)
        write(Frame(kind: .call, payload: payload))
        awaitPeer(since: now)
    }

    func cancel(_ call: PendingCall) {
        guard pending.removeValue(forKey: call.id) != nil else {
            call.abandoned = true
            return
        }
        call.fail(CancellationError())
        sendCancel(call.id)
    }

    private func received(reply payload: ByteBuffer) {
        var payload = payload
        guard let id = payload.readInteger(as: UInt64.self) else {
            return violation(WireError.malformedPayload(.reply, "no call ID"))
        }
        busyPoll?.waitEnded()
        // A reply to a call that timed out or was cancelled is dropped.
        pending.removeValue(forKey: id)?.succeed(payload)
    }

    /// One timer per connection, set for the earliest deadline of the calls in flight (calls
    /// usually share a timeout, so a new call rarely moves it); when it fires, every call past
    /// its deadline fails and the timer moves to the next deadline.
    private func armDeadlineTimer(at deadline: NIODeadline) {
        deadlineTimer?.cancel()
        armedDeadline = deadline
        deadlineTimer = context?.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            expireCalls()
        }
    }

    private func expireCalls() {
        armedDeadline = .distantFuture
        deadlineTimer = nil
        let now = NIODeadline.now()
        var next = NIODeadline.distantFuture
        for call in Array(pending.values) {
            if call.deadline <= now {
                pending[call.id] = nil
                call.fail(RemoteCallError.timedOut(after: call.timeout))
                sendCancel(call.id)
            } else if call.deadline < next {
                next = call.deadline
            }
        }
        if next < .distantFuture { armDeadlineTimer(at: next) }
    }

    private func sendCancel(_ id: UInt64) {
        var payload = ByteBuffer()
        payload.writeInteger(id)
        write(Frame(kind: .cancel, payload: payload))
    }

    // MARK: Calls the peer makes

    private func received(call payload: ByteBuffer) {
        busyPoll?.waitEnded()
        var payload = payload
        guard let decoder, let connection else {
            return violation(WireError.unexpectedFrame(.call, expected: "an introduction first"))
        }
        guard let id = payload.readInteger(as: UInt64.self),
              let length = payload.readInteger(as: UInt32.self),
              let arguments = payload.readSlice(length: Int(length))
        else {
            return violation(WireError.malformedPayload(.call, "truncated call"))
        }
        guard let header = payload.readCallHeader(reusing: &targetNames) else {
            return refuse(id, .invalidArguments("malformed call header"))
        }
        guard let actor = system.localActor(for: header.recipient) else {
            return refuse(id, .actorNotFound)
        }
        guard !header.target.isEmpty else {
            // A probe: the recipient exists; here is its own ID.
            var reply = ByteBuffer.replyBuffer(callID: id, outcome: .value)
            guard let actorID = actor.id as? FleetActorID,
                  (try? BinaryEncoder().encode(actorID, into: &reply)) != nil
            else { return refuse(id, .actorNotFound) }
            // The prober holds the reference from now on, like any sent in a reply.
            keepAlive([actor])
            return write(Frame(kind: .reply, payload: reply))
        }
        let invocation = FleetInvocationDecoder(
            arguments: arguments, genericSubstitutions: header.genericSubstitutions, decoder: decoder)
        let handler = FleetResultHandler(callID: id, connection: connection, system: system)
        let system = self.system
        let target = header.target
        running[id] = .some(nil)
        let task = startTask { await system.invoke(actor, target: target, invocation: invocation, handler: handler) }
        // Keep the handle for cancellation, unless the call already finished.
        if running[id] != nil { running[id] = task }
    }

    /// Starts a task for a call the peer made. On the event loop it starts at once, on this
    /// thread, and stays here: no hop before the call runs, and a call that never suspends
    /// replies within the read that brought it in. Elsewhere it starts on the global executor.
    private func startTask(_ operation: sending @escaping () async -> Void) -> Task<Void, Never> {
        guard callsOnLoop else { return Task(executorPreference: nil, operation: operation) }
        if #available(macOS 26.0, *) {
            return Task.immediate(executorPreference: loopExecutor, operation: operation)
        }
        return Task(executorPreference: loopExecutor, operation: operation)
    }

    private func received(cancel payload: ByteBuffer) {
        var payload = payload
        guard let id = payload.readInteger(as: UInt64.self) else {
            return violation(WireError.malformedPayload(.cancel, "no call ID"))
        }
        running.removeValue(forKey: id)??.cancel()
    }

    /// Sends the reply of a call the peer made, unless it was cancelled meanwhile.
    func reply(_ payload: ByteBuffer, to id: UInt64, keepingAlive actors: [any DistributedActor]) {
        guard running.removeValue(forKey: id) != nil else { return }
        keepAlive(actors)
        write(Frame(kind: .reply, payload: payload))
        awaitPeer(since: .now())
    }

    /// This side sent a call or a reply at `now` and now expects the peer's next frame: the loop
    /// polls for it a while before it sleeps, when that has been worth it (``BusyPoll``), and
    /// stops for work queued for the connection.
    private func awaitPeer(since now: NIODeadline) {
        // A write NIO could not finish waits for the socket to drain, which NIO only sees
        // between polls.
        guard let busyPoll, let context, context.channel.isWritable else { return }
        busyPoll.waitStarted(at: now)
        let executor = loopExecutor
        busyPoll.pollSoon(on: context.eventLoop) { executor.hasQueuedWork }
    }

    /// Keeps local actors whose references went to the peer alive until the peer releases them
    /// (or the connection closes); each reference sent counts once.
    func keepAlive(_ actors: [any DistributedActor]) {
        for actor in actors {
            guard let id = actor.id as? FleetActorID else { continue }
            leases[id.number, default: Lease(actor: actor, sent: 0)].sent += 1
        }
    }

    /// The peer let go of every copy of an actor's ID that reached it, `count` of them: the
    /// lease ends unless more were sent meanwhile.
    private func received(release payload: ByteBuffer) {
        var payload = payload
        guard let number = payload.readInteger(as: UInt64.self), let count = payload.readInteger(as: UInt64.self) else {
            return violation(WireError.malformedPayload(.release, "truncated release"))
        }
        guard let lease = leases[number] else { return }
        if lease.sent <= count {
            leases[number] = nil
        } else {
            leases[number]?.sent -= count
        }
    }

    /// Tells the peer this side no longer holds its actor `number`, which reached it `count` times.
    func sendRelease(_ number: UInt64, count: UInt64) {
        guard closeError == nil else { return }
        var payload = ByteBuffer()
        payload.writeInteger(number)
        payload.writeInteger(count)
        write(Frame(kind: .release, payload: payload))
    }

    private func refuse(_ id: UInt64, _ failure: CallFailure) {
        var payload = ByteBuffer.replyBuffer(callID: id, outcome: .failure)
        try? BinaryEncoder().encode(failure, into: &payload)
        write(Frame(kind: .reply, payload: payload))
    }

    // MARK: Introduction, heartbeat, closing

    private func received(introduction frame: Frame) {
        guard peer == nil, let connection else {
            return violation(WireError.unexpectedFrame(.introduce, expected: "one introduction"))
        }
        do {
            let node = try frame.decode(Introduction.self).node
            peer = node
            connection.didIntroduce(peer: node, system: system)
            decoder = connection.decoder
            system.connectionIntroduced(connection)
            introduction.succeed(node)
        } catch {
            violation(error)
        }
    }

    private func scheduleBeat(context: ChannelHandlerContext, interval: Duration) {
        heartbeat = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(interval)) { [self] in
            beat(interval: interval)
        }
    }

    private func beat(interval: Duration) {
        guard let context, closeError == nil else { return }
        scheduleBeat(context: context, interval: interval)
        let silence = NIODeadline.now() - lastInbound
        if silence > TimeAmount(interval * 3) {
            close(failingCallsWith: RemoteCallError.connectionLost(
                reason: "no word from the peer for \(Duration.nanoseconds(silence.nanoseconds))"))
            return
        }
        if context.channel.isWritable {
            write(Frame(kind: .ping))
        }
    }

    func close(failingCallsWith error: any Error) {
        guard let context, closeError == nil else { return }
        closeError = error
        guard case RemoteCallError.systemShutDown? = error as? RemoteCallError,
              let notice = try? Frame(kind: .error, encoding: "the actor system at the other end shut down")
        else {
            context.close(promise: nil)
            return
        }
        // Tell the peer why, so that its calls fail with that reason.
        context.writeAndFlush(wrapOutboundOut(notice)).assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }

    /// The peer broke the protocol: tell it why, log it, and close.
    private func violation(_ error: any Error) {
        guard let context, closeError == nil else { return }
        logger.warning("FleetActors protocol error; closing the connection", metadata: [
            "remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "unknown")", "error": "\(error)",
        ])
        closeError = RemoteCallError.connectionLost(reason: "protocol error: \(error)")
        let notice = (try? Frame(kind: .error, encoding: "\(error)")) ?? Frame(kind: .error)
        context.writeAndFlush(wrapOutboundOut(notice)).assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }

    // MARK: Writing

    /// Writes a frame and flushes once per batch: at the end of the current read, or after the
    /// event loop's queued work.
    private func write(_ frame: Frame) {
        guard let context else { return }
        context.write(wrapOutboundOut(frame), promise: nil)
        if reading {
            flushNeeded = true
        } else if !flushScheduled {
            flushScheduled = true
            loopExecutor.executeOnLoop { [self] in
                flushScheduled = false
                self.context?.flush()
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        busyPoll?.release()
        busyPoll = nil
        self.context = nil
    }
}
