import NIOCore
import Synchronization

/// A message that arrived at this rank: which communicator context, from which world rank, with
/// which tag, and its data.
struct RankMessage: Sendable {
    var context: UInt64
    var source: Int
    var tag: Int32
    var data: ByteBuffer
}

/// What a receive or probe waits for: a context, and a source and tag or any.
struct MessagePattern: Sendable {
    var context: UInt64
    /// World rank; `nil` for any source.
    var source: Int?
    /// `nil` for any tag.
    var tag: Int32?

    func matches(_ message: RankMessage) -> Bool {
        matches(context: message.context, source: message.source, tag: message.tag)
    }

    func matches(context: UInt64, source: Int, tag: Int32) -> Bool {
        context == self.context && (self.source == nil || self.source == source) && (self.tag == nil || self.tag == tag)
    }
}

/// Where this rank's incoming messages meet its receives: MPI's matching engine.
///
/// A message goes to the oldest posted receive it matches, or waits among the unexpected ones
/// until a receive takes it. Messages from one sender arrive in the order sent (one ordered
/// connection per pair of ranks), so matching never overtakes. Once the job fails, every posted
/// receive and every later one throws the failure.
final class Mailbox: Sendable {
    private struct State {
        var unexpected = UnexpectedMessages()
        var posted: [PostedReceive] = []
        var probes: [(pattern: MessagePattern, continuation: CheckedContinuation<RankMessage, any Error>, id: UInt64)] = []
        var failure: CommunicatorError?
        /// World ranks that said goodbye: nothing more can come from them.
        var finished: Set<Int> = []
        var failureObservers: [@Sendable (CommunicatorError) -> Void] = []

        /// How many things could keep a message from going straight to its receive.
        var obstacles: Int { unexpected.count + posted.count + probes.count + finished.count + (failure == nil ? 0 : 1) }
    }

    private let state = Mutex(State())
    /// `State.obstacles`, as of the last change: zero most of the time, when
    /// ``mayReceiveDirectly(from:)`` need not take the lock.
    private let obstacles = Atomic<Int>(0)
    private let probeIDs = Atomic<UInt64>(0)
    /// Whether `state.failure` is set: every operation checks it, and most find it unset
    /// without taking the lock (one atomic load). Set by ``fail(_:)`` alone, after the failure.
    let hasFailed = Atomic<Bool>(false)

    /// Runs `body` on the state, under the lock, and counts its obstacles afterwards: every
    /// change of the state goes through it (reads may take the lock directly).
    private func withState<Result: Sendable, Failure: Error>(_ body: (inout State) throws(Failure) -> Result) throws(Failure) -> Result {
        try state.withLock { state throws(Failure) in
            defer { obstacles.store(state.obstacles, ordering: .releasing) }
            return try body(&state)
        }
    }

    /// A message arrived (on the event loop, or from this rank to itself).
    func deliver(_ message: RankMessage) {
        let receive: PostedReceive? = withState { state in
            if let index = state.posted.firstIndex(where: { !$0.isClaimed && $0.pattern.matches(message) }) {
                return state.posted.remove(at: index)
            }
            state.unexpected.append(message)
            return nil
        }
        if let receive {
            receive.complete(.success(message))
            return
        }
        let probes = withState { state in
            let matching = state.probes.filter { $0.pattern.matches(message) }
            if !matching.isEmpty { state.probes.removeAll { $0.pattern.matches(message) } }
            return matching
        }
        for probe in probes { probe.continuation.resume(returning: message) }
    }

    /// A message from `source` with `context` and `tag`, whose body is `length` bytes, is
    /// arriving in pieces: the posted receive it matches, when that receive has a sink for
    /// exactly that length, is claimed for it (no other message matches it any more) and
    /// returned, for the transport to feed its sink. `nil`: the message goes the usual way.
    func claim(source: Int, context: UInt64, tag: Int32, length: Int) -> PostedReceive? {
        withState { state in
            guard let receive = state.posted.first(where: { !$0.isClaimed && $0.pattern.matches(context: context, source: source, tag: tag) }),
                  receive.sink?.length == length else { return nil }
            receive.claim()
            return receive
        }
    }

    /// The message a claimed receive's sink took has arrived whole: completes the receive (with
    /// an empty body: it is in the sink), unless it was withdrawn or failed meanwhile.
    func completeClaimed(_ receive: PostedReceive, context: UInt64, source: Int, tag: Int32) {
        let removed = withState { state in
            guard let index = state.posted.firstIndex(where: { $0 === receive }) else { return false }
            state.posted.remove(at: index)
            return true
        }
        if removed { receive.complete(.success(RankMessage(context: context, source: source, tag: tag, data: ByteBuffer()))) }
    }

    /// Whether a receive from `source` may take its message straight from the link, past the
    /// mailbox: nothing is posted or probing (which the message might be for), nothing from
    /// `source` waits here (which would come first), and the job has not failed.
    ///
    /// Asked on every receive: the common case, nothing in the way, is one atomic load, inline.
    @inline(__always)
    func mayReceiveDirectly(from source: Int) -> Bool {
        obstacles.load(ordering: .acquiring) == 0 || mayReceiveDirectlyPastObstacles(from: source)
    }

    /// ``mayReceiveDirectly(from:)`` when something may be in the way: looks under the lock.
    @inline(never)
    private func mayReceiveDirectlyPastObstacles(from source: Int) -> Bool {
        state.withLock { state in
            state.failure == nil && state.posted.isEmpty && state.probes.isEmpty && !state.finished.contains(source)
                && !state.unexpected.contains(source: source)
        }
    }

    /// Posts a receive: it takes the oldest matching unexpected message now, or the next matching
    /// one to arrive. Posting order is matching order (MPI's rule for `irecv`). A receive with a
    /// `sink` may get its message's body through the sink instead (``MessageSink``).
    func post(_ pattern: MessagePattern, sink: MessageSink? = nil) -> PostedReceive {
        let receive = PostedReceive(pattern: pattern, sink: sink)
        let outcome: Result<RankMessage, CommunicatorError>? = withState { state in
            if let message = state.unexpected.removeFirst(matching: pattern) { return .success(message) }
            if let failure = state.failure { return .failure(failure) }
            if let source = pattern.source, state.finished.contains(source) { return .failure(.rankFinished(rank: source)) }
            state.posted.append(receive)
            return nil
        }
        if let outcome { receive.complete(outcome.mapError { $0 }) }
        return receive
    }

    /// Withdraws a posted receive that no message has matched yet; `false` when one already has.
    @discardableResult
    func withdraw(_ receive: PostedReceive, because error: any Error) -> Bool {
        let removed = withState { state in
            guard let index = state.posted.firstIndex(where: { $0 === receive }) else { return false }
            state.posted.remove(at: index)
            return true
        }
        if removed { receive.complete(.failure(error)) }
        return removed
    }

    /// The oldest unexpected message matching `pattern`, left in place.
    func peek(_ pattern: MessagePattern) throws(CommunicatorError) -> RankMessage? {
        try state.withLock { state throws(CommunicatorError) in
            if let message = state.unexpected.first(matching: pattern) { return message }
            if let failure = state.failure { throw failure }
            return nil
        }
    }

    /// Waits until a message matching `pattern` has arrived and returns it, leaving it for a
    /// receive to take.
    nonisolated(nonsending) func probe(_ pattern: MessagePattern) async throws -> RankMessage {
        let id = probeIDs.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let outcome: Result<RankMessage, any Error>? = withState { state in
                    if let message = state.unexpected.first(matching: pattern) { return .success(message) }
                    if let failure = state.failure { return .failure(failure) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.probes.append((pattern, continuation, id))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let probe = withState { state in
                state.probes.firstIndex { $0.id == id }.map { state.probes.remove(at: $0) }
            }
            probe?.continuation.resume(throwing: CancellationError())
        }
    }

    /// The rank said goodbye: receives that wait on it alone can never complete.
    func finished(_ rank: Int) {
        let stranded = withState { state in
            state.finished.insert(rank)
            let stranded = state.posted.filter { $0.pattern.source == rank }
            state.posted.removeAll { $0.pattern.source == rank }
            return stranded
        }
        for receive in stranded { receive.complete(.failure(CommunicatorError.rankFinished(rank: rank))) }
    }

    /// The job failed: every waiting receive and probe, and every later one, throws `error`.
    /// The first failure reported stays.
    func fail(_ error: CommunicatorError) {
        let (receives, probes, observers) = withState { state in
            let first = state.failure == nil
            if first {
                state.failure = error
                hasFailed.store(true, ordering: .releasing)
            }
            defer {
                state.posted = []
                state.probes = []
                state.failureObservers = []
            }
            return (state.posted, state.probes, first ? state.failureObservers : [])
        }
        let failure = state.withLock { $0.failure } ?? error
        for receive in receives { receive.complete(.failure(failure)) }
        for probe in probes { probe.continuation.resume(throwing: failure) }
        for observer in observers { observer(failure) }
    }

    /// Calls `observer` with the job's failure once it fails (at once if it has).
    func whenFailed(_ observer: @escaping @Sendable (CommunicatorError) -> Void) {
        let failure: CommunicatorError? = withState { state in
            if let failure = state.failure { return failure }
            state.failureObservers.append(observer)
            return nil
        }
        if let failure { observer(failure) }
    }

    /// The failure, once the job has failed. Asked by every operation: until then, one atomic
    /// load (the lock, out of line, counts a reference to the mailbox that the load does not).
    var failure: CommunicatorError? {
        guard hasFailed.load(ordering: .acquiring) else { return nil }
        return recordedFailure()
    }

    @inline(never)
    private func recordedFailure() -> CommunicatorError? {
        state.withLock { $0.failure }
    }
}

/// A receive posted to a ``Mailbox``: completed once, by a message or a failure; ``wait()``
/// returns that.
final class PostedReceive: Sendable {
    let pattern: MessagePattern
    /// Where the body may go as it arrives, on transports that can (``MessageSink``).
    let sink: MessageSink?
    /// A transport is feeding the sink with a message for it (``Mailbox/claim(source:context:tag:length:)``).
    private let claimed = Atomic<Bool>(false)
    private enum State {
        case waiting(CheckedContinuation<RankMessage, any Error>?)
        case done(Result<RankMessage, any Error>)
    }
    private let state = Mutex(State.waiting(nil))
    private let completed = Atomic<Bool>(false)

    init(pattern: MessagePattern, sink: MessageSink? = nil) {
        self.pattern = pattern
        self.sink = sink
    }

    var isClaimed: Bool { claimed.load(ordering: .relaxed) }

    func claim() { claimed.store(true, ordering: .relaxed) }

    func complete(_ outcome: Result<RankMessage, any Error>) {
        let waiter: CheckedContinuation<RankMessage, any Error>?? = state.withLock { state in
            guard case let .waiting(waiter) = state else { return nil }
            state = .done(outcome)
            completed.store(true, ordering: .releasing)
            return .some(waiter)
        }
        if case let .some(.some(waiter)) = waiter { waiter.resume(with: outcome) }
    }

    /// Whether it has completed: one atomic read, for polling.
    var isCompleted: Bool { completed.load(ordering: .acquiring) }

    /// The outcome, when there is one already.
    var outcome: Result<RankMessage, any Error>? {
        state.withLock { if case let .done(outcome) = $0 { outcome } else { nil } }
    }

    /// Waits for the message. One task waits at a time.
    nonisolated(nonsending) func wait() async throws -> RankMessage {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<RankMessage, any Error>? = state.withLock { state in
                switch state {
                case let .done(outcome): return outcome
                case .waiting:
                    state = .waiting(continuation)
                    return nil
                }
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }
}
