import FleetActors
import FleetWire
import Foundation
import Synchronization

/// Worker processes: copies of this executable, started with ``JobServer/runWorkerIfRequested()``
/// as their first step, each attached to the server over an authenticated loopback connection and
/// pulling jobs from the server's queue. A worker that dies fails (or, for retryable jobs,
/// requeues) its jobs with ``JobError/workerCrashed(_:)`` and is replaced.
///
/// The workers can also be processes started by someone else — the ranks of an MPI job — that
/// attach with a token they were given (``awaitingWorkers(named:on:queue:)``). Those are not
/// replaced when they go, and a job abandoned while one runs it is dropped rather than stopped.
final class ProcessWorkers: Sendable {
    /// Environment variables that make a copy of the executable act as a worker.
    enum Environment {
        static let endpoint = "FLEET_JOB_WORKER"
        static let secret = "FLEET_JOB_WORKER_SECRET"
        static let token = "FLEET_JOB_WORKER_TOKEN"
    }

    /// Jobs each worker holds at once: one running, one waiting, so that it never idles for a
    /// round trip.
    static let pipelineDepth = 2
    /// Jobs a worker holds beyond those while at least ``burstBacklog`` wait: with plenty of
    /// work, round trips stay covered; with little, no worker hoards jobs others could run.
    static let burstDepth = 6
    static let burstBacklog = 32

    private let system: FleetActorSystem
    /// Where workers attach, and the secret they prove.
    let endpoint: Endpoint
    let secret: String
    /// The program the workers run, and its arguments; `nil` when the workers are started by
    /// someone else and attach by themselves.
    private let executable: URL?
    private let arguments: [String]
    private let queue: PortableJobQueue
    private let state = Mutex(State())
    private let tokens = Atomic<UInt64>(0)

    private struct State {
        var target = 0
        var slots: [UInt64: Slot] = [:]
        var closed = false
        /// Workers that ended before attaching since the last one that attached.
        var failedStarts = 0
    }

    /// Workers in a row that may end before attaching before the server gives up on them.
    static let maximumFailedStarts = 3

    private struct Slot {
        /// The worker process; `nil` for a worker this server did not start.
        var process: Process?
        /// The worker's row in the stats (`nil`: counted as this machine's).
        var name: String?
        var attached = false
        /// Lets the worker go: its `attach` call returns and it exits.
        var release: CheckedContinuation<Void, Never>?
        var released = false
    }

    private init(
        system: FleetActorSystem, endpoint: Endpoint, secret: String, queue: PortableJobQueue,
        executable: URL?, arguments: [String]
    ) {
        self.executable = executable
        self.arguments = arguments
        self.system = system
        self.endpoint = endpoint
        self.secret = secret
        self.queue = queue
    }

    /// The running executable and its arguments: workers that are copies of this program.
    static func currentProgram() throws -> (URL, [String]) {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return (URL(fileURLWithPath: path), Array(CommandLine.arguments.dropFirst()))
    }

    /// Starts a loopback actor system for the workers and `workers` worker processes running
    /// `program` (default: copies of this one).
    static func start(
        workers: Int, queue: PortableJobQueue, program: (URL, [String])? = nil
    ) async throws -> ProcessWorkers {
        let (executable, arguments) = try program ?? currentProgram()
        if ProcessInfo.processInfo.environment[Environment.endpoint] != nil {
            // A worker copy that went on to run the program: it must not start workers of its own.
            throw JobError.workersUnavailable(
                "this process was started as a job worker but did not call JobServer.runWorkerIfRequested() first")
        }
        let pool = try await serve(on: "127.0.0.1", queue: queue, executable: executable, arguments: arguments)
        try pool.setWorkers(workers)
        return pool
    }

    /// Listens on `host` for workers that others start — the ranks of an MPI job — and that
    /// attach with their index in `names` plus one as their token (``JobServer/serveAsWorker(at:secret:token:)``).
    /// Each one's jobs are counted in the stats under its name. Jobs wait for the first to attach;
    /// workers that have not attached within `attachTimeout` are given up, and when none is
    /// left, the queued jobs fail.
    static func awaitingWorkers(
        named names: [String], on host: String, queue: PortableJobQueue, attachTimeout: Duration = .seconds(60)
    ) async throws -> ProcessWorkers {
        let pool = try await serve(on: host, queue: queue, executable: nil, arguments: [])
        pool.state.withLock { state in
            state.target = names.count
            for (index, name) in names.enumerated() {
                state.slots[UInt64(index + 1)] = Slot(process: nil, name: name)
            }
        }
        Task { [weak pool] in
            try? await Task.sleep(for: attachTimeout)
            pool?.giveUpUnattached(after: attachTimeout)
        }
        return pool
    }

    /// An actor system on `host` (a free port, a fresh secret) where workers attach.
    private static func serve(
        on host: String, queue: PortableJobQueue, executable: URL?, arguments: [String]
    ) async throws -> ProcessWorkers {
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max)) }.joined()
        var configuration = FleetActorSystem.Configuration(credentials: .secret(try Secret(Array(secret.utf8))))
        configuration.callTimeout = .seconds(365 * 24 * 3600)   // Jobs have their own timeouts.
        let system = FleetActorSystem(configuration: configuration)
        let endpoint = try await system.listen(on: Endpoint(host: host, port: 0))
        let pool = ProcessWorkers(
            system: system, endpoint: endpoint, secret: secret, queue: queue, executable: executable, arguments: arguments)
        system.publish(JobCoordinator(actorSystem: system) { [weak pool] worker, token in
            await pool?.attached(worker, token: token)
        }, as: JobCoordinator.publishedName)
        return pool
    }

    /// Workers started by others that never attached are given up; with none left at all, the
    /// queued jobs fail.
    private func giveUpUnattached(after timeout: Duration) {
        let noneLeft = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.slots = state.slots.filter { $0.value.attached }
            return state.slots.isEmpty
        }
        if noneLeft { failQueued("no worker attached within \(timeout)") }
    }

    /// Fails every queued job with ``JobError/workersUnavailable(_:)``: there is no worker left.
    private func failQueued(_ reason: String) {
        queue.close(failing: JobError.workersUnavailable(reason))
    }

    var workers: Int { state.withLock { $0.target } }

    /// Starts or retires workers until there are `count`.
    func setWorkers(_ count: Int) throws {
        let (retire, missing): ([CheckedContinuation<Void, Never>], Int) = state.withLock { state in
            state.target = max(1, count)
            var retire: [CheckedContinuation<Void, Never>] = []
            let live = state.slots.filter { !$0.value.released }
            for (token, _) in live.dropFirst(state.target) {
                state.slots[token]?.released = true
                if let release = state.slots[token]?.release { retire.append(release) }
                state.slots[token]?.release = nil
            }
            return (retire, max(0, state.target - live.count))
        }
        for release in retire { release.resume() }
        for _ in 0..<missing { try spawn() }
    }

    /// Starts one worker process.
    private func spawn() throws {
        guard let executable else { return }   // Workers started by others are not replaced.
        let token = tokens.add(1, ordering: .relaxed).newValue
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment[Environment.endpoint] = endpoint.description
        environment[Environment.secret] = secret
        environment[Environment.token] = String(token)
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [weak self] _ in self?.exitedBeforeAttaching(token: token) }
        try state.withLock { state in
            guard !state.closed else { return }
            try process.run()
            state.slots[token] = Slot(process: process)
        }
    }

    /// A worker process ended; when it never attached, start another, or give up (failing
    /// every queued job) after ``maximumFailedStarts`` in a row.
    private func exitedBeforeAttaching(token: UInt64) {
        let (giveUp, retry): (String?, Bool) = state.withLock { state in
            guard let slot = state.slots[token], !slot.attached, !state.closed else { return (nil, false) }
            state.slots[token] = nil
            state.failedStarts += 1
            let status = slot.process?.terminationReason == .uncaughtSignal
                ? "was killed by signal \(slot.process?.terminationStatus ?? 0)"
                : "exited with status \(slot.process?.terminationStatus ?? 0)"
            guard state.failedStarts >= Self.maximumFailedStarts else { return (nil, true) }
            state.closed = true
            return ("worker processes ended before attaching (the last \(status)); does the program call "
                + "JobServer.runWorkerIfRequested() first thing in main?", false)
        }
        if retry { try? setWorkers(workers) }
        if let giveUp { failQueued(giveUp) }
    }

    /// A worker attached: pull jobs for it until it is released, dies, or the server closes.
    func attached(_ worker: JobWorker, token: UInt64) async {
        let slot = state.withLock { state -> Slot? in
            guard let slot = state.slots[token], !slot.attached, !state.closed else { return nil }
            state.slots[token]?.attached = true
            state.failedStarts = 0
            return slot
        }
        guard let slot else { return }
        let process = slot.process
        let tracker = DispatchTracker(process: process, name: slot.name)
        let pullers = (0..<(Self.pipelineDepth + Self.burstDepth)).map { index in
            Task { await self.pull(for: worker, token: token, tracker: tracker, backlog: index < Self.pipelineDepth ? 1 : Self.burstBacklog) }
        }
        // The worker's call stays open while it works; it returns when the worker is let go.
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let released = state.withLock { state -> Bool in
                    guard var slot = state.slots[token], !slot.released, !state.closed else { return true }
                    slot.release = continuation
                    state.slots[token] = slot
                    return false
                }
                if released { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.slots[token]?.release = nil }
                return state.slots[token]?.release
            }?.resume()
        }
        // Pullers waiting for a job stop; calls in flight carry on (but stop at shutdown).
        for puller in pullers { puller.cancel() }
        if isLetGo(token) {
            // Fewer workers: the worker finishes the job it runs and answers `JobNotStarted` for
            // the ones it has not started, which go back to the queue; it decides which under
            // one lock, so no job runs both here and elsewhere. Then it leaves.
            try? await worker.retire()
            for puller in pullers { await puller.value }
        }
        // Not let go, yet gone (it died between jobs): start another.
        if state.withLock({ $0.slots[token].map { !$0.released } ?? false }) {
            await slotEnded(token: token, process: process)
        }
    }

    /// A worker died: forget it, reap its process, and start a replacement (once per worker).
    /// A worker started by others is not replaced; when the last one is gone, queued jobs fail.
    private func slotEnded(token: UInt64, process: Process?) async {
        let (ended, release, noneLeft, name) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?, Bool, String?) in
            guard let slot = state.slots[token] else { return (false, nil, false, nil) }
            state.slots[token] = nil
            return (!state.closed, slot.release, state.slots.isEmpty, slot.name)
        }
        release?.resume()   // Its `attach` call, if still open, returns.
        guard ended else { return }
        guard let process else {
            if noneLeft { failQueued("every worker is gone (the last: \(name ?? "worker \(token)"))") }
            return
        }
        _ = await Self.exitDescription(of: process)
        try? setWorkers(workers)
    }


    private func isRetired(_ token: UInt64) -> Bool {
        state.withLock { $0.closed || $0.slots[token]?.released ?? true }
    }

    /// Whether the worker was let go because there are to be fewer workers (not at shutdown).
    private func isLetGo(_ token: UInt64) -> Bool {
        state.withLock { !$0.closed && $0.slots[token]?.released ?? false }
    }

    private var isClosed: Bool { state.withLock { $0.closed } }

    private func pull(for worker: JobWorker, token: UInt64, tracker: DispatchTracker, backlog: Int) async {
        while !isRetired(token), var job = await queue.next(backlog: backlog) {
            if job.isFinished() { continue }
            job.attempts += 1
            // Let go while this puller waited: the job never reached the worker.
            if isRetired(token) {
                queue.handBack(job)
                return
            }
            let sequence = tracker.dispatched()
            // The call is a task of its own: it carries on when the worker is let go (the worker
            // finishes the job or hands it back), and stops alone when the job is abandoned.
            let call = Task { [job] in try await worker.run(function: job.function, input: job.input, job: sequence) }
            // A job cancelled or timed out while it runs stops with its worker: a job function
            // cannot be interrupted, a process can. The worker is then replaced. One waiting in
            // the worker behind the running one is dropped there: its call is cancelled, and
            // the worker never starts it.
            job.whenAbandoned { [tracker] in
                guard let process = tracker.process else {
                    // A worker that is not ours to stop: dropped there if waiting; if running,
                    // it finishes, and its result is dropped.
                    call.cancel()
                    return
                }
                // The worker says whether the job runs (then it starts nothing more, and its
                // process is stopped) or waits (then it drops it). Only the worker knows: a
                // reply not yet here may be that of a job it has finished.
                Task {
                    if (try? await worker.stop(job: sequence)) == true {
                        tracker.stopping(sequence)
                        kill(process.processIdentifier, SIGKILL)
                    }
                }
            }
            let start = ContinuousClock.now
            do {
                let output = try await withTaskCancellationHandler {
                    try await call.value
                } onCancel: {
                    if isClosed { call.cancel() }   // Shutdown: calls in flight stop at once.
                }
                tracker.finished(sequence)
                job.complete(.success(output.bytes), output.runTime, node: tracker.name)
            } catch let error as RemoteCallError {
                switch error {
                case .connectionLost, .systemShutDown, .unreachable:
                    // The worker is gone. Only the oldest job in flight was running there; the
                    // others waited behind it and never ran.
                    let wasRunning = tracker.lost(sequence)
                    await slotEnded(token: token, process: tracker.process)
                    if wasRunning {
                        await crashed(job, tracker: tracker, start: start)
                    } else {
                        queue.handBack(job)
                    }
                    return
                default:
                    tracker.finished(sequence)
                    job.complete(.failure(error), start.duration(to: .now), node: tracker.name)
                }
            } catch is CancellationError {
                // The job was abandoned before the worker started it, which dropped it; or the
                // server is shutting down with the job in flight: failed, as the queue is closed.
                tracker.finished(sequence)
                if !job.isFinished() { queue.handBack(job) }
                if isRetired(token) { return }
            } catch is JobNotStarted {
                // The worker was let go before it started the job: another worker runs it.
                tracker.finished(sequence)
                if !job.isFinished() { queue.handBack(job) }
                return
            } catch {
                tracker.finished(sequence)
                job.complete(.failure(error), start.duration(to: .now), node: tracker.name)
            }
        }
    }

    /// The job that was running when its worker died: run it again elsewhere when it may be,
    /// else fail it with how the worker ended.
    private func crashed(_ job: PortableJob, tracker: DispatchTracker, start: ContinuousClock.Instant) async {
        if job.retryable, job.attempts < PortableJob.maximumAttempts, !job.isFinished(), queue.push(job, first: true) {
            return
        }
        let reason = if let process = tracker.process {
            await Self.exitDescription(of: process)
        } else {
            "\(tracker.name ?? "the worker") lost its connection to the job server"
        }
        job.complete(.failure(JobError.workerCrashed(reason)), start.duration(to: .now), node: tracker.name)
    }

    /// How a worker process ended, waiting (on a thread of its own, whatever happens to the
    /// calling task) up to 5 s for it to end, then killing it.
    static func exitDescription(of process: Process) async -> String {
        let pid = process.processIdentifier
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = ExitFlag()
            DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
                if !exited.value.load(ordering: .acquiring) { kill(pid, SIGKILL) }
            }
            let thread = Thread {
                process.waitUntilExit()
                exited.value.store(true, ordering: .releasing)
                continuation.resume()
            }
            thread.name = "fleet-job-worker-reaper"
            thread.start()
        }
        switch process.terminationReason {
        case .uncaughtSignal:
            return "worker process \(pid) \(killedBySignalDescription(process.terminationStatus))"
        default:
            return "worker process \(pid) exited with status \(process.terminationStatus)"
        }
    }

    /// Lets every worker go, waits for the processes to end (killing stragglers after 5 s), and
    /// stops the actor system.
    func shutdown() async {
        let (releases, processes) = state.withLock { state in
            state.closed = true
            let releases = state.slots.values.compactMap(\.release)
            let processes = state.slots.values.compactMap(\.process)
            state.slots = [:]
            return (releases, processes)
        }
        for release in releases { release.resume() }
        for process in processes {
            _ = await Self.exitDescription(of: process)
        }
        await system.shutdown()
    }
}

/// Whether a worker process has been reaped.
private final class ExitFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// The jobs sent to one worker process, in the order sent: the worker runs them one after
/// another, so when it dies, the oldest one in flight is the one that was running.
private final class DispatchTracker: Sendable {
    /// The worker's process, when this server started it.
    let process: Process?
    /// The worker's row in the stats.
    let name: String?
    private let state = Mutex<(next: UInt64, inFlight: Set<UInt64>, running: UInt64?)>((0, [], nil))

    init(process: Process?, name: String?) {
        self.process = process
        self.name = name
    }

    /// Records a job sent; returns its place in the order.
    func dispatched() -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.inFlight.insert(state.next)
            return state.next
        }
    }

    /// The worker said it runs job `sequence` and will start no other: if it dies now, that is
    /// the job it was running, whatever replies are still on their way.
    func stopping(_ sequence: UInt64) {
        state.withLock { $0.running = sequence }
    }

    func finished(_ sequence: UInt64) {
        _ = state.withLock { $0.inFlight.remove(sequence) }
    }

    /// The worker died with job `sequence` in flight: whether that job was the one running.
    func lost(_ sequence: UInt64) -> Bool {
        state.withLock { state in
            // The first loss reported fixes which job was running: the oldest in flight then.
            if state.running == nil { state.running = state.inFlight.min() ?? 0 }
            state.inFlight.remove(sequence)
            return state.running == sequence
        }
    }
}
