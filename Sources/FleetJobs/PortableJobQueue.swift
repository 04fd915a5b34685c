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
        var waiters: [UInt64: CheckedContinuation<PortableJob?, Never>] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let waiterIDs = Atomic<UInt64>(0)

    /// Queues a job at the back (or at the front, for a job to retry); `false` once closed.
    @discardableResult
    func push(_ job: PortableJob, first: Bool = false) -> Bool {
        let waiter: CheckedContinuation<PortableJob?, Never>? = state.withLock { state in
            guard !state.closed else { return nil }
            if let key = state.waiters.keys.first {
                return state.waiters.removeValue(forKey: key)
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

    /// The next job; `nil` once the queue is closed or the task is cancelled.
    func next() async -> PortableJob? {
        let id = waiterIDs.add(1, ordering: .relaxed).newValue
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let job: PortableJob?? = state.withLock { state in
                    if state.head < state.jobs.count {
                        let job = state.jobs[state.head]
                        state.head += 1
                        if state.head == state.jobs.count {
                            state.jobs.removeAll(keepingCapacity: true)
                            state.head = 0
                        }
                        return .some(job)
                    }
                    if state.closed || Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let job { continuation.resume(returning: job) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Closes the queue: waiting pullers get `nil`; returns the jobs never taken.
    func close() -> [PortableJob] {
        let (jobs, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.jobs = []
                state.head = 0
                state.waiters = [:]
            }
            return (Array(state.jobs[state.head...]), Array(state.waiters.values))
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        return jobs
    }
}
