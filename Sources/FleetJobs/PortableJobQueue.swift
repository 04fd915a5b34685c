import Synchronization

/// A job that can run outside this process: its function's identity and its encoded input.
struct PortableJob: Sendable {
    let id: UInt64
    /// The mangled name of the ``JobFunction`` type.
    let function: String
    /// The binary-encoded `Input`.
    let input: [UInt8]
    /// Run again elsewhere when the worker running it dies (up to ``maximumAttempts`` runs).
    let retryable: Bool
    /// How many workers have taken the job so far.
    var attempts = 0

    /// The most times a retryable job is run before its worker's death is its outcome.
    static let maximumAttempts = 3
    /// Whether the job already has an outcome (cancelled or timed out while queued).
    let isFinished: @Sendable () -> Bool
    /// Registers what to do if the job is cancelled or times out while a worker runs it.
    var whenAbandoned: @Sendable (@escaping @Sendable () -> Void) -> Void = { _ in }
    /// Completes the job with the worker's encoded output or error, how long it took, and the
    /// remote node that ran it (`nil`: this machine).
    let finish: @Sendable (Result<[UInt8], any Error>, Duration, String?) -> Void

    /// Completes the job (see ``finish``).
    func complete(_ outcome: Result<[UInt8], any Error>, _ elapsed: Duration, node: String? = nil) {
        finish(outcome, elapsed, node)
    }
}

/// The jobs waiting for a worker outside this process; each free worker pulls the next one.
final class PortableJobQueue: Sendable {
    private struct State {
        var jobs: [PortableJob] = []
        var head = 0
        /// Pullers waiting, with the backlog each needs before it takes a job.
        var waiters: [UInt64: (continuation: CheckedContinuation<PortableJob?, Never>, backlog: Int)] = [:]

        var queued: Int { jobs.count - head }
        var closed = false
        /// Why the queue was closed: what jobs pushed since then fail with.
        var refusal: any Error = JobError.serverShutDown
    }

    private let state = Mutex(State())
    private let waiterIDs = Atomic<UInt64>(0)

    /// Queues a job at the back (or at the front, for a job to retry); `false` once closed.
    @discardableResult
    func push(_ job: PortableJob, first: Bool = false) -> Bool {
        let waiter: CheckedContinuation<PortableJob?, Never>? = state.withLock { state in
            guard !state.closed else { return nil }
            // The waiter needing the least backlog, if the backlog with this job is enough.
            let backlog = state.queued + 1
            if let (key, entry) = state.waiters.min(by: { $0.value.backlog < $1.value.backlog }), entry.backlog <= backlog {
                state.waiters[key] = nil
                return entry.continuation
            }
            if first, state.head > 0 {
                state.head -= 1
                state.jobs[state.head] = job
            } else if first {
                state.jobs.insert(job, at: 0)
            } else {
                state.jobs.append(job)
            }
            return nil
        }
        if let waiter {
            waiter.resume(returning: job)
            return true
        }
        return !state.withLock { $0.closed }
    }

    /// Puts back a job that a worker took but never ran (its worker went away): at the front,
    /// without counting the attempt; fails it with the ``refusal`` once the queue is closed.
    func handBack(_ job: PortableJob) {
        var job = job
        job.attempts -= 1
        if !push(job, first: true) { job.complete(.failure(refusal), .zero) }
    }

    /// Why the queue no longer takes jobs (``JobError/serverShutDown`` until it is closed).
    var refusal: any Error { state.withLock { $0.refusal } }

    /// The next job; `nil` once the queue is closed or the task is cancelled.
    ///
    /// - Parameter backlog: take a job only when at least this many are queued: extra pullers
    ///   that keep a remote worker busy through round trips when work is plentiful, without
    ///   hoarding jobs when it is scarce.
    func next(backlog: Int = 1) async -> PortableJob? {
        let id = waiterIDs.add(1, ordering: .relaxed).newValue
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let job: PortableJob?? = state.withLock { state in
                    if state.queued >= max(1, backlog) {
                        let job = state.jobs[state.head]
                        state.head += 1
                        if state.head == state.jobs.count {
                            state.jobs.removeAll(keepingCapacity: true)
                            state.head = 0
                        }
                        return .some(job)
                    }
                    if state.closed || Task.isCancelled { return .some(nil) }
                    state.waiters[id] = (continuation, max(1, backlog))
                    return nil
                }
                if let job { continuation.resume(returning: job) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: nil)
        }
    }

    /// Takes up to `count` queued jobs at once, without waiting.
    func take(upTo count: Int) -> [PortableJob] {
        guard count > 0 else { return [] }
        return state.withLock { state in
            let end = min(state.jobs.count, state.head + count)
            let taken = Array(state.jobs[state.head..<end])
            state.head = end
            if state.head == state.jobs.count {
                state.jobs.removeAll(keepingCapacity: true)
                state.head = 0
            }
            return taken
        }
    }

    /// Whether ``close(failing:)`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Closes the queue: waiting pullers get `nil`, the jobs never taken fail with `error`, and
    /// so do jobs pushed later. Only the first close counts.
    func close(failing error: any Error) {
        let (jobs, waiters, refusal) = state.withLock { state in
            if !state.closed { state.refusal = error }
            state.closed = true
            defer {
                state.jobs = []
                state.head = 0
                state.waiters = [:]
            }
            return (Array(state.jobs[state.head...]), state.waiters.values.map(\.continuation), state.refusal)
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        for job in jobs { job.complete(.failure(refusal), .zero) }
    }
}
