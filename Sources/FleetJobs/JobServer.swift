import FleetActors
import FleetWire
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
    /// Worker processes and the queue they pull from, with ``JobIsolation/processes``.
    let processes: ProcessWorkers?
    private let portable: PortableJobQueue
    /// Whether ``JobFunction`` jobs go through `portable` (worker processes or remote nodes).
    private let usesPortableQueue: Bool
    /// What feeds this process's threads from `portable`, beside the nodes.
    private let feeders: [Task<Void, Never>]
    private let nodeSystem: FleetActorSystem?
    /// The remote nodes' links, and who listens for nodes announcing themselves.
    private let nodes: NodeLinks?
    private let listener: NodeListener?
    private let serials = Atomic<UInt64>(0)
    private let registry = Mutex(Registry())
    private let created = ContinuousClock.now

    /// Unfinished jobs per group and who waits for groups to drain, for ``wait(group:)``; and
    /// the work done, for ``stats``.
    private struct Registry {
        var unfinished: [String: Int] = [:]
        var waiters: [(group: String?, continuation: CheckedContinuation<Void, Never>)] = []
        var local = NodeStats(name: "local")
        var remote: [NodeStats] = []

        mutating func record(_ node: String?, _ elapsed: Duration) {
            guard let node else { return local.record(elapsed) }
            index(of: node).map { remote[$0].record(elapsed) }
        }

        /// The index of `node`'s stats in `remote`, which gets them when the node is new.
        mutating func index(of node: String) -> Int? {
            if let index = remote.firstIndex(where: { $0.name == node }) { return index }
            remote.append(NodeStats(name: node))
            return remote.count - 1
        }

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
        processes = nil
        portable = PortableJobQueue()
        usesPortableQueue = false
        feeders = []
        nodeSystem = nil
        nodes = nil
        listener = nil
    }

    /// Creates a server whose ``JobFunction`` jobs run in `workers` threads of this process
    /// (``JobIsolation/threads``) or in `workers` worker processes (``JobIsolation/processes``):
    /// copies of this executable, which must call ``runWorkerIfRequested()`` first thing.
    ///
    /// - Throws: when the worker processes cannot be started.
    public convenience init(workers: Int? = nil, isolation: JobIsolation) async throws {
        try await self.init(workers: workers, isolation: isolation, nodes: [], nodeConfiguration: nil)
    }

    /// Creates a server that also runs jobs on remote nodes (pp's `ppservers`): `fleet serve`
    /// processes, which receive this program's executable (content-addressed, cached, sent only
    /// when missing) and run ``JobFunction`` jobs on their worker processes. Jobs go to whichever
    /// worker, local or remote, is free; a node that dies or is cut off hands its jobs back to
    /// the others.
    ///
    /// ```swift
    /// let credentials = try Credentials.resolve(secretFile: nil, insecure: false)   // FLEET_SECRET
    /// let server = try await JobServer(workers: 2, nodes: [try Endpoint("node-1:60000")], credentials: credentials)
    /// ```
    ///
    /// With `discovery`, nodes that announce themselves (`fleet serve --announce`) under the same
    /// secret join as they are heard (pp's `ppservers=("*",)`); see ``NodeDiscovery``.
    ///
    /// - Parameters:
    ///   - workers: local workers beside the nodes (0: only the nodes).
    ///   - nodes: the nodes to link at once.
    ///   - discovery: where to listen for nodes announcing themselves, if at all. With no local
    ///     workers, jobs then wait for a node to be heard: give them a timeout.
    ///   - credentials: the nodes' shared secret.
    ///   - tls: TLS for nodes started with `--tls-cert` and `--tls-key` (the CA to trust).
    public convenience init(
        workers: Int? = nil, isolation: JobIsolation = .threads, nodes: [Endpoint] = [], discovery: NodeDiscovery? = nil,
        credentials: Credentials, tls: TLSOptions? = nil
    ) async throws {
        var configuration = FleetActorSystem.Configuration(credentials: credentials)
        configuration.wire.tls = tls
        configuration.callTimeout = .seconds(365 * 24 * 3600)   // Jobs have their own timeouts.
        configuration.heartbeatInterval = .seconds(1)           // A node cut off is noticed in ~3 s.
        configuration.wire.connectTimeout = .seconds(3)
        try await self.init(
            workers: workers, isolation: isolation, nodes: nodes, discovery: discovery, nodeConfiguration: configuration)
    }

    /// The designated initializer: local `workers`, remote `nodes` (and those `discovery`
    /// hears), and workers that others start and that attach on `host` (`attaching`: their
    /// names in the stats).
    init(
        workers: Int?, isolation: JobIsolation, nodes: [Endpoint], discovery: NodeDiscovery? = nil,
        nodeConfiguration: FleetActorSystem.Configuration?, attaching: [String] = [], on host: String = "127.0.0.1"
    ) async throws {
        let count = workers ?? ProcessInfo.processInfo.activeProcessorCount
        let remote = nodeConfiguration != nil && (!nodes.isEmpty || discovery != nil)
        guard count > 0 || remote || !attaching.isEmpty else {
            throw JobError.workersUnavailable("no local workers and no nodes: give workers: 1 or more, or nodes")
        }
        let pool = LocalWorkerPool(workers: max(1, count))
        let portable = PortableJobQueue()
        self.pool = pool
        self.portable = portable
        usesPortableQueue = isolation == .processes || remote || !attaching.isEmpty
        switch isolation {
        case _ where !attaching.isEmpty:
            processes = try await ProcessWorkers.awaitingWorkers(named: attaching, on: host, queue: portable)
        case .processes where count > 0: processes = try await ProcessWorkers.start(workers: count, queue: portable)
        default: processes = nil
        }
        var feeders: [Task<Void, Never>] = []
        if isolation == .threads, remote {
            // This process's threads pull from the same queue as the nodes.
            for _ in 0..<count {
                feeders.append(Task { await Self.feedThreads(pool: pool, queue: portable) })
            }
        }
        self.feeders = feeders
        guard let nodeConfiguration, remote else {
            nodeSystem = nil
            self.nodes = nil
            listener = nil
            return
        }
        let system = FleetActorSystem(configuration: nodeConfiguration)
        nodeSystem = system
        // With no local workers and no discovery, the jobs depend on the given nodes: when the
        // last one is given up, the queued jobs fail with why, rather than wait for ever.
        let links = NodeLinks(system: system, queue: portable, canDoWithout: count > 0 || discovery != nil)
        self.nodes = links
        for endpoint in nodes { links.add(endpoint) }
        if let discovery {
            do {
                listener = try await NodeListener(for: discovery, credentials: nodeConfiguration.wire.credentials) { node in
                    links.add(node, discovered: true)
                }
            } catch {
                for item in pool.close() { item.abandon() }
                portable.close(failing: JobError.serverShutDown)
                for feeder in feeders { feeder.cancel() }
                await links.close()
                for feeder in feeders { await feeder.value }
                await processes?.shutdown()
                await system.shutdown()
                throw error
            }
        } else {
            listener = nil
        }
        registry.withLock { registry in
            for name in attaching { registry.remote.append(NodeStats(name: name)) }
        }
    }

    /// Where the server listens for nodes announcing themselves, when it was given a
    /// ``NodeDiscovery`` (the real port when 0 was asked for).
    package var discoveryEndpoint: Endpoint? { listener?.endpoint }

    /// The remote nodes linked now: those given, and those discovered and not given up.
    package var linkedNodes: Set<Endpoint> { nodes?.linked ?? [] }

    /// Runs queued jobs on this process's threads, one at a time per feeder.
    private static func feedThreads(pool: LocalWorkerPool, queue: PortableJobQueue) async {
        let waiting = WaitingJobs()
        while let job = await queue.next() {
            if job.isFinished() { continue }
            let start = ContinuousClock.now
            do {
                let output = try await pool.runPortable(function: job.function, input: job.input, waiting: waiting)
                job.complete(.success(output.bytes), output.runTime)
            } catch {
                job.complete(.failure(error), start.duration(to: .now))
            }
        }
    }

    /// The number of workers: threads, or processes (pp's `get_ncpus()`).
    public var workers: Int { processes?.workers ?? pool.workers }

    /// Changes the number of workers while jobs run (pp's `set_ncpus()`): added workers start
    /// taking jobs at once. Surplus threads leave after their current job; a surplus worker
    /// process finishes the job it is running, hands the ones it has not started back to the
    /// queue, and leaves. Either way each job runs once.
    public func setWorkers(_ count: Int) {
        if let processes {
            try? processes.setWorkers(count)
        } else {
            pool.setWorkers(count)
        }
    }

    /// Submits `function` with `input` (pp's `submit(func, args, depfuncs)`).
    ///
    /// - Parameters:
    ///   - function: the job's function, by type: its identity is what worker processes and
    ///     nodes run.
    ///   - input: the function's argument.
    ///   - group: the group the job belongs to, for ``wait(group:)``.
    ///   - timeout: when set, the job fails with ``JobError/timedOut(after:)`` if it has not
    ///     finished by then.
    ///   - callback: called once with the job's outcome, on the thread that finished it (pp's
    ///     `callback`); keep it short.
    ///   - retryable: with worker processes, run the job again on another worker when its worker
    ///     dies (up to 3 runs in all), instead of failing it with ``JobError/workerCrashed(_:)``.
    /// - Returns: the job; `try await job.value` waits for its result.
    @discardableResult
    public func submit<F: JobFunction>(
        _ function: F.Type, _ input: F.Input, group: String = "default", timeout: Duration? = nil,
        retryable: Bool = false, callback: (@Sendable (Result<F.Output, any Error>) -> Void)? = nil
    ) -> Job<F.Output> {
        guard usesPortableQueue else {
            return submit(group: group, timeout: timeout, callback: callback) { try F.run(input) }
        }
        let (job, core) = makeJob(F.Output.self, group: group, timeout: timeout, callback: callback)
        let encoded: [UInt8]
        do {
            encoded = try BinaryEncoder().encode(input)
        } catch {
            core.complete(.failure(error))
            return job
        }
        guard let name = _mangledTypeName(F.self) else {
            core.complete(.failure(JobWorkerError.unknownFunction("\(F.self)")))
            return job
        }
        var portableJob = PortableJob(
            id: job.id, function: name, input: encoded, retryable: retryable,
            isFinished: { core.isFinished },
            finish: { [self] outcome, elapsed, node in
                guard !core.isFinished else { return }
                registry.withLock { $0.record(node, elapsed) }
                core.complete(outcome.flatMap { bytes in
                    Result { try BinaryDecoder().decode(F.Output.self, from: bytes) }
                })
            }
        )
        portableJob.whenAbandoned = { action in
            core.onCompletion { outcome in
                guard case let .failure(error as JobError) = outcome else { return }
                switch error {
                case .cancelled, .timedOut: action()
                default: break
                }
            }
        }
        let accepted = portable.push(portableJob)
        if !accepted { core.complete(.failure(portable.refusal)) }
        return job
    }

    /// A new job and its state, registered in its group, with its callback and timeout set up.
    private func makeJob<Output: Sendable>(
        _ output: Output.Type, group: String, timeout: Duration?,
        callback: (@Sendable (Result<Output, any Error>) -> Void)?
    ) -> (Job<Output>, JobCore<Output>) {
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
        return (job, core)
    }

    /// Submits a closure to run on a worker thread. Closures run only on this process's threads,
    /// whatever the isolation; a ``JobFunction`` can also run in worker processes.
    @discardableResult
    public func submit<Output: Sendable>(
        group: String = "default", timeout: Duration? = nil,
        callback: (@Sendable (Result<Output, any Error>) -> Void)? = nil,
        _ body: @escaping @Sendable () throws -> Output
    ) -> Job<Output> {
        let (job, core) = makeJob(Output.self, group: group, timeout: timeout, callback: callback)
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
        portable.close(failing: JobError.serverShutDown)
        await listener?.stop()
        for feeder in feeders { feeder.cancel() }
        await nodes?.close()
        for feeder in feeders { await feeder.value }
        await processes?.shutdown()
        await nodeSystem?.shutdown()
        await wait()
    }

    /// The work done so far, per node (pp's `print_stats()`, as a value).
    public var stats: JobStats {
        let joined = self.nodes?.joined ?? []
        let nodes = registry.withLock { registry in
            for name in joined { _ = registry.index(of: name) }   // Nodes yet to finish a job.
            return [registry.local] + registry.remote
        }
        return JobStats(nodes: nodes, elapsed: created.duration(to: .now))
    }

    /// Prints ``stats`` as pp's `print_stats()` does.
    public func printStats() {
        print(stats.table)
    }
}

/// Where a ``JobServer`` runs ``JobFunction`` jobs.
public enum JobIsolation: Sendable, Hashable {
    /// Threads of this process: the fastest, and Swift has no GIL to get in the way.
    case threads
    /// Worker processes (copies of this executable): a job that crashes takes down only its
    /// worker, which is replaced; the job fails with ``JobError/workerCrashed(_:)`` or, when
    /// submitted as retryable, runs again on another worker.
    case processes
}
