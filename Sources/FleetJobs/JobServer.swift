import Foundation
import Synchronization

/// Runs jobs on worker threads: Parallel Python's `pp.Server`, for Swift, which has no GIL to
/// work around — threads in one process run truly in parallel.
///
/// The seed's program:
///
/// ```swift
/// let server = JobServer(workers: 2)
/// print("Starting with", server.workers, "workers")
/// let inputs = [100_000, 100_100, 100_200, 100_300, 100_400, 100_500, 100_600, 100_700]
/// let jobs = inputs.map { server.submit(SumPrimes.self, $0) }
/// for (input, job) in zip(inputs, jobs) {
///     print("Sum of primes below", input, "is", try await job.value)
/// }
/// server.printStats()
/// await server.shutdown()
/// ```
///
/// Jobs go to whichever worker is free next. A job that throws keeps its error: ``Job/value``
/// rethrows it. Jobs can carry a timeout, belong to a group that can be awaited
/// (``wait(group:)``), and have a callback run when they finish.
public final class JobServer: Sendable {
    private let pool: LocalWorkerPool
    private let serials = Atomic<UInt64>(0)
    private let registry = Mutex(Registry())
    private let created = ContinuousClock.now

    /// Unfinished jobs per group and who waits for groups to drain, for ``wait(group:)``; and
    /// the work done, for ``stats``.
    private struct Registry {
        var unfinished: [String: Int] = [:]
        var waiters: [(group: String?, continuation: CheckedContinuation<Void, Never>)] = []
        var local = NodeStats(name: "local")

        var unfinishedTotal: Int { unfinished.values.reduce(0, +) }

        func isDrained(_ group: String?) -> Bool {
            guard let group else { return unfinished.isEmpty }
            return unfinished[group] == nil
        }

        /// Counts a finished job; returns the waiters whose groups are now drained.
        mutating func finish(in group: String) -> [CheckedContinuation<Void, Never>] {
            let left = (unfinished[group] ?? 1) - 1
            unfinished[group] = left > 0 ? left : nil
            guard left == 0, !waiters.isEmpty else { return [] }
            var ready: [CheckedContinuation<Void, Never>] = []
            var still: [(group: String?, continuation: CheckedContinuation<Void, Never>)] = []
            for waiter in waiters {
                if isDrained(waiter.group) { ready.append(waiter.continuation) } else { still.append(waiter) }
            }
            waiters = still
            return ready
        }
    }

    /// Creates a server with `workers` worker threads (default: the machine's active cores).
    public init(workers: Int? = nil) {
        pool = LocalWorkerPool(workers: workers ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The number of worker threads (pp's `get_ncpus()`).
    public var workers: Int { pool.workers }

    /// Changes the number of worker threads while jobs run (pp's `set_ncpus()`): added threads
    /// start taking jobs at once; surplus ones leave after their current job.
    public func setWorkers(_ count: Int) {
        pool.setWorkers(count)
    }

    /// Submits `function` with `input` (pp's `submit(func, args, depfuncs)`).
    ///
    /// - Parameters:
    ///   - group: the group the job belongs to, for ``wait(group:)``.
    ///   - timeout: when set, the job fails with ``JobError/timedOut(after:)`` if it has not
    ///     finished by then.
    ///   - callback: called once with the job's outcome, on the thread that finished it (pp's
    ///     `callback`); keep it short.
    /// - Returns: the job; `try await job.value` waits for its result.
    @discardableResult
    public func submit<F: JobFunction>(
        _ function: F.Type, _ input: F.Input, group: String = "default", timeout: Duration? = nil,
        callback: (@Sendable (Result<F.Output, any Error>) -> Void)? = nil
    ) -> Job<F.Output> {
        submit(group: group, timeout: timeout, callback: callback) { try F.run(input) }
    }

    /// Submits a closure to run on a worker thread. Closures run only on this process's threads;
    /// a ``JobFunction`` can also run in worker processes and on remote nodes.
    @discardableResult
    public func submit<Output: Sendable>(
        group: String = "default", timeout: Duration? = nil,
        callback: (@Sendable (Result<Output, any Error>) -> Void)? = nil,
        _ body: @escaping @Sendable () throws -> Output
    ) -> Job<Output> {
        let id = serials.add(1, ordering: .relaxed).newValue
        let core = JobCore<Output> { [self] in
            for waiter in registry.withLock({ $0.finish(in: group) }) { waiter.resume() }
        }
        let job = Job(id: id, group: group, core: core)
        registry.withLock { $0.unfinished[group, default: 0] += 1 }
        if let callback { core.onCompletion(callback) }
        if let timeout {
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { core.complete(.failure(JobError.timedOut(after: timeout))) }
            }
            core.onCompletion { _ in timer.cancel() }
        }
        let accepted = pool.submit(LocalWorkerPool.Item(
            run: { [self] in
                guard !core.isFinished else { return }   // Cancelled or timed out while queued.
                let start = ContinuousClock.now
                let outcome = Result { try body() }
                let elapsed = start.duration(to: .now)
                registry.withLock { $0.local.record(elapsed) }
                core.complete(outcome)
            },
            abandon: { core.complete(.failure(JobError.serverShutDown)) }
        ))
        if !accepted { core.complete(.failure(JobError.serverShutDown)) }
        return job
    }

    /// Waits until no job of `group` (of any group when `nil`) is left unfinished (pp's
    /// `wait(group)`); their outcomes stay with the jobs.
    public func wait(group: String? = nil) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let drained = registry.withLock { registry in
                if registry.isDrained(group) { return true }
                registry.waiters.append((group, continuation))
                return false
            }
            if drained { continuation.resume() }
        }
    }

    /// Stops the server: jobs not yet started fail with ``JobError/serverShutDown``, running
    /// jobs finish, and the worker threads leave.
    public func shutdown() async {
        for item in pool.close() { item.abandon() }
        await wait()
    }

    /// The work done so far, per node (pp's `print_stats()`, as a value).
    public var stats: JobStats {
        let local = registry.withLock { $0.local }
        return JobStats(nodes: [local], elapsed: created.duration(to: .now))
    }

    /// Prints ``stats`` as pp's `print_stats()` does.
    public func printStats() {
        print(stats.table)
    }
}
