import Synchronization

/// A submitted job: Parallel Python's job object. `try await job.value` waits for its result,
/// as calling `job()` does in pp.
///
/// ```swift
/// let job = server.submit(SumPrimes.self, 100_000)
/// let sum = try await job.value
/// ```
///
/// Any number of tasks may wait for the same job. Jobs finish in whatever order their workers
/// finish them, not in submission order.
public final class Job<Output: Sendable>: Sendable {
    /// The job's number, in submission order, unique within its server.
    public let id: UInt64
    /// The group the job was submitted in.
    public let group: String
    let core: JobCore<Output>

    init(id: UInt64, group: String, core: JobCore<Output>) {
        self.id = id
        self.group = group
        self.core = core
    }

    /// The job's result, once it has one.
    ///
    /// - Throws: the error the job's function threw; ``JobError`` when the job timed out, was
    ///   cancelled or never ran; `CancellationError` when the waiting task is cancelled (the
    ///   job itself carries on).
    public var value: Output {
        get async throws { try await core.value() }
    }

    /// Whether the job has finished, with a result or an error.
    public var isFinished: Bool { core.isFinished }

    /// Cancels the job: one that has not started never runs; one running in a worker process,
    /// here or on a remote node, stops with that process, which is replaced; one running on a
    /// thread finishes (a thread cannot be stopped), but its result is discarded. Waiters get
    /// ``JobError/cancelled``.
    public func cancel() {
        core.complete(.failure(JobError.cancelled))
    }
}

/// The shared state of a job: its outcome and who waits for it.
final class JobCore<Output: Sendable>: Sendable {
    private enum State {
        case pending(waiters: [UInt64: CheckedContinuation<Output, any Error>], callbacks: [@Sendable (Result<Output, any Error>) -> Void])
        case finished(Result<Output, any Error>)
    }

    private let state = Mutex<State>(.pending(waiters: [:], callbacks: []))
    private let nextWaiter = Atomic<UInt64>(0)
    /// Called once, right after the outcome is set (the server's bookkeeping).
    private let finished: @Sendable () -> Void

    init(finished: @escaping @Sendable () -> Void = {}) {
        self.finished = finished
    }

    var isFinished: Bool {
        state.withLock { if case .finished = $0 { true } else { false } }
    }

    /// Runs `callback` once with the outcome: now if there is one, else when it arrives.
    func onCompletion(_ callback: @escaping @Sendable (Result<Output, any Error>) -> Void) {
        let outcome: Result<Output, any Error>? = state.withLock { state in
            switch state {
            case let .finished(outcome): return outcome
            case .pending(let waiters, var callbacks):
                callbacks.append(callback)
                state = .pending(waiters: waiters, callbacks: callbacks)
                return nil
            }
        }
        if let outcome { callback(outcome) }
    }

    /// Sets the outcome, unless there already is one; returns whether this call set it.
    @discardableResult
    func complete(_ outcome: Result<Output, any Error>) -> Bool {
        typealias Pending = ([CheckedContinuation<Output, any Error>], [@Sendable (Result<Output, any Error>) -> Void])
        let pending: Pending? = state.withLock { state in
            guard case let .pending(waiters, callbacks) = state else { return nil }
            state = .finished(outcome)
            return (Array(waiters.values), callbacks)
        }
        guard let (waiters, callbacks) = pending else { return false }
        finished()
        for waiter in waiters { waiter.resume(with: outcome) }
        for callback in callbacks { callback(outcome) }
        return true
    }

    func value() async throws -> Output {
        let waiter = nextWaiter.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let outcome: Result<Output, any Error>? = state.withLock { state in
                    switch state {
                    case let .finished(outcome): return outcome
                    case .pending(var waiters, let callbacks):
                        if Task.isCancelled { return .failure(CancellationError()) }
                        waiters[waiter] = continuation
                        state = .pending(waiters: waiters, callbacks: callbacks)
                        return nil
                    }
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let continuation: CheckedContinuation<Output, any Error>? = state.withLock { state in
                guard case .pending(var waiters, let callbacks) = state,
                      let continuation = waiters.removeValue(forKey: waiter) else { return nil }
                state = .pending(waiters: waiters, callbacks: callbacks)
                return continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }
}
