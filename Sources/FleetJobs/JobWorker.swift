import Distributed
import FleetActors
import FleetWire
import Foundation
import Synchronization

/// The actor a worker process hosts: runs ``JobFunction``s by name for its job server, one at a
/// time on a thread of its own (never on the connection's event loop).
distributed actor JobWorker {
    typealias ActorSystem = FleetActorSystem

    private let threads = LocalWorkerPool(workers: 1)
    /// The jobs sent here that wait behind the running one.
    private let waiting = WaitingJobs()

    /// Runs the job function whose type has the mangled name `function` on `input` (its
    /// `Input`, binary-encoded) and returns its `Output`, binary-encoded. A call cancelled
    /// before its job starts (the job was cancelled or timed out) drops the job: it never runs.
    ///
    /// - Parameter job: the job's number on this worker, for ``stop(job:)``.
    /// - Throws: the function's own error; ``JobWorkerError`` when the name is unknown here or
    ///   the bytes do not decode; ``JobNotStarted`` when the worker was let go (``retire()``)
    ///   before the job started.
    distributed func run(function: String, input: [UInt8], job: UInt64) async throws -> JobOutput {
        try await threads.runPortable(function: function, input: input, waiting: waiting, job: job)
    }

    /// The job server gave up on job `job` (cancelled, or timed out). Waiting here, it is
    /// dropped (its call throws `CancellationError`) and the answer is `false`. Running, it
    /// cannot be interrupted: the worker starts nothing more (the jobs waiting, and any sent
    /// later, throw ``JobNotStarted``) and the answer is `true`, for the server to stop the
    /// process. Unknown — finished already, or its call still on the way (the server sends both
    /// from tasks of their own, so this one can overtake it) — the answer is `false`, and the job
    /// is dropped if it arrives later.
    ///
    /// The worker decides, not the server: only it knows which job runs, where the server
    /// sees only which replies it has not had yet.
    distributed func stop(job: UInt64) -> Bool {
        waiting.stop(job: job)
    }

    /// Lets the worker go: the job it is running finishes; every job it has not started, queued
    /// here or sent later, throws ``JobNotStarted`` at once, for its server to run elsewhere.
    distributed func retire() {
        waiting.retire()
    }
}

/// A job's encoded output, and how long its function ran where it ran (the stats' job time:
/// not the time it waited behind other jobs, nor the round trip).
struct JobOutput: Codable, Sendable {
    var bytes: [UInt8]
    var runTime: Duration
}

/// A worker's answer for a job it was let go before starting: the job never ran there.
struct JobNotStarted: Error, Codable {}

/// The jobs a worker was sent and has not started. Each starts at most once, and only when it
/// was not dropped first: by its call's cancellation or by ``retire()``, which settle it at once.
/// Starting and dropping take the same lock, so a job is either run or dropped, never both.
final class WaitingJobs: Sendable {
    fileprivate enum Entry {
        /// Has a ticket; its call is about to wait.
        case arriving
        /// Its call was cancelled before it waited.
        case dropped
        case waiting(CheckedContinuation<JobOutput, any Error>)
    }

    fileprivate struct State {
        var tickets: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        var retired = false
        /// Tickets by the job number the server gave, for ``stop(job:)``.
        var byJob: [UInt64: UInt64] = [:]
        /// The ticket of the job running now.
        var running: UInt64?
        /// Jobs the server gave up on before they arrived (or after they finished): dropped
        /// when they arrive. The oldest are forgotten past ``stoppedLimit``.
        var stoppedEarly: Set<UInt64> = []
    }

    /// How many early stops a worker remembers: a call overtaken by more later stops than this
    /// is not plausible, and a stop for a job that had finished is never used.
    static let stoppedLimit = 1_024

    private let state = Mutex(State())

    /// A ticket for a job about to be queued (numbered `job` by its server, if given);
    /// ``admit(_:_:)`` must follow.
    func ticket(job: UInt64? = nil) -> UInt64 {
        state.withLock { state in
            state.tickets += 1
            state.entries[state.tickets] = .arriving
            if let job {
                if state.stoppedEarly.remove(job) != nil {
                    // Stopped while its call was on the way: it never runs.
                    state.entries[state.tickets] = .dropped
                } else {
                    state.byJob[job] = state.tickets
                }
            }
            return state.tickets
        }
    }

    /// Registers the job's call; `false` when the job was dropped already (its call is resumed
    /// with why).
    func admit(_ ticket: UInt64, _ continuation: CheckedContinuation<JobOutput, any Error>) -> Bool {
        let refusal: (any Error)? = state.withLock { state in
            if case .dropped? = state.entries[ticket] {
                state.entries[ticket] = nil
                return CancellationError()
            }
            if state.retired {
                state.entries[ticket] = nil
                return JobNotStarted()
            }
            state.entries[ticket] = .waiting(continuation)
            return nil
        }
        guard let refusal else { return true }
        continuation.resume(throwing: refusal)
        return false
    }

    /// Starts the job: its call, to resume with the outcome; `nil` when it was dropped.
    func start(_ ticket: UInt64) -> CheckedContinuation<JobOutput, any Error>? {
        state.withLock { state in
            guard case let .waiting(continuation)? = state.entries[ticket] else { return nil }
            state.entries[ticket] = nil
            state.running = ticket
            return continuation
        }
    }

    /// The job started with `ticket` has finished.
    func finished(_ ticket: UInt64, job: UInt64?) {
        state.withLock { state in
            if state.running == ticket { state.running = nil }
            if let job, state.byJob[job] == ticket { state.byJob[job] = nil }
        }
    }

    /// The server gave up on job `job`: see ``JobWorker/stop(job:)``. Returns whether it is
    /// the one running (and then the worker starts nothing more).
    func stop(job: UInt64) -> Bool {
        // One lock for the decision and what follows from it: no job starts in between.
        let (running, dropped, notStarted) = state.withLock { state -> (Bool, CheckedContinuation<JobOutput, any Error>?, [CheckedContinuation<JobOutput, any Error>]) in
            guard let ticket = state.byJob[job] else {
                state.stoppedEarly.insert(job)
                if state.stoppedEarly.count > Self.stoppedLimit, let oldest = state.stoppedEarly.min() {
                    state.stoppedEarly.remove(oldest)
                }
                return (false, nil, [])
            }
            if state.running == ticket {
                return (true, nil, state.retireAll())
            }
            return (false, state.drop(ticket), [])
        }
        dropped?.resume(throwing: CancellationError())
        for continuation in notStarted { continuation.resume(throwing: JobNotStarted()) }
        return running
    }

    /// Drops the job, unless it started: its call throws `CancellationError`.
    func drop(_ ticket: UInt64) {
        state.withLock { $0.drop(ticket) }?.resume(throwing: CancellationError())
    }

    /// Starts no more jobs: those waiting, and those sent later, throw ``JobNotStarted``.
    func retire() {
        let dropped = state.withLock { $0.retireAll() }
        for continuation in dropped { continuation.resume(throwing: JobNotStarted()) }
    }
}

extension WaitingJobs.State {
    /// Drops the job with `ticket` unless it started; returns its call, to resume with
    /// `CancellationError` once the lock is released, if it was waiting.
    mutating func drop(_ ticket: UInt64) -> CheckedContinuation<JobOutput, any Error>? {
        switch entries[ticket] {
        case .arriving?:
            entries[ticket] = .dropped
        case let .waiting(continuation)?:
            entries[ticket] = nil
            return continuation
        case .dropped?, nil:
            break
        }
        return nil
    }

    /// Marks the worker retired and takes the calls of the jobs waiting, to resume with
    /// ``JobNotStarted`` once the lock is released.
    mutating func retireAll() -> [CheckedContinuation<JobOutput, any Error>] {
        retired = true
        var dropped: [CheckedContinuation<JobOutput, any Error>] = []
        for (ticket, entry) in entries {
            guard case let .waiting(continuation) = entry else { continue }
            entries[ticket] = nil
            dropped.append(continuation)
        }
        return dropped
    }
}

extension LocalWorkerPool {
    /// Runs the job function with the mangled name `function` on one of the pool's threads,
    /// decoding its input and encoding its output with the binary coder. The job waits in
    /// `waiting` until a thread starts it; cancelling the calling task before then drops it.
    func runPortable(function: String, input: [UInt8], waiting: WaitingJobs, job: UInt64? = nil) async throws -> JobOutput {
        guard let type = _typeByName(function) as? any JobFunction.Type else {
            throw JobWorkerError.unknownFunction(function)
        }
        let ticket = waiting.ticket(job: job)
        defer { waiting.finished(ticket, job: job) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard waiting.admit(ticket, continuation) else { return }
                let accepted = submit(LocalWorkerPool.Item(
                    run: {
                        guard let continuation = waiting.start(ticket) else { return }   // Dropped.
                        let started = ContinuousClock.now
                        let outcome = Result { try Self.execute(type, input) }
                            .map { JobOutput(bytes: $0, runTime: started.duration(to: .now)) }
                        waiting.finished(ticket, job: nil)
                        continuation.resume(with: outcome)
                    },
                    abandon: { waiting.start(ticket)?.resume(throwing: JobError.serverShutDown) }
                ))
                if !accepted { waiting.start(ticket)?.resume(throwing: JobError.serverShutDown) }
            }
        } onCancel: {
            waiting.drop(ticket)
        }
    }

    private static func execute<F: JobFunction>(_ function: F.Type, _ bytes: [UInt8]) throws -> [UInt8] {
        let input: F.Input
        do {
            input = try BinaryDecoder().decode(F.Input.self, from: bytes)
        } catch {
            throw JobWorkerError.undecodableInput("\(F.self): \(error)")
        }
        return try BinaryEncoder().encode(F.run(input))
    }
}

/// Why a worker could not run a job it was sent.
public enum JobWorkerError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    /// The worker's executable has no job function of that (mangled) name: it is another build.
    case unknownFunction(String)
    /// The job's input did not decode as the function's `Input`.
    case undecodableInput(String)

    public var description: String {
        switch self {
        case let .unknownFunction(name): "the worker has no job function \(name) (a different build?)"
        case let .undecodableInput(detail): "the worker could not decode the job's input: \(detail)"
        }
    }
}

/// The actor a job server publishes for its worker processes: each worker attaches its
/// ``JobWorker`` and stays attached until the server lets it go.
distributed actor JobCoordinator {
    typealias ActorSystem = FleetActorSystem

    static let publishedName = "fleet.jobs.coordinator"

    private let attach: @Sendable (JobWorker, UInt64) async -> Void

    init(actorSystem: FleetActorSystem, attach: @escaping @Sendable (JobWorker, UInt64) async -> Void) {
        self.actorSystem = actorSystem
        self.attach = attach
    }

    /// Attaches a worker started with `token`; returns when the server lets the worker go.
    distributed func attach(_ worker: JobWorker, token: UInt64) async {
        await attach(worker, token)
    }
}
