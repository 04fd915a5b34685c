import Crypto
import Distributed
import FleetActors
import FleetWire
import Foundation
import Synchronization

/// What a node tells the job servers that connect to it.
public struct JobNodeInfo: Codable, Sendable, Hashable {
    /// The node's operating system (`PeerInfo.currentOperatingSystem`).
    public var operatingSystem: String
    /// The node's CPU architecture (`PeerInfo.currentArchitecture`).
    public var architecture: String
    /// Worker processes the node runs per program.
    public var workers: Int
}

/// The actor a `fleet serve` node publishes: Parallel Python's `ppserver`. Job servers ship it
/// their executable (content-addressed by SHA-256, cached, sent only when missing) and run jobs
/// on its worker processes, which run that executable.
distributed actor JobNode {
    typealias ActorSystem = FleetActorSystem

    static let publishedName = "fleet.jobs.node"
    /// Bytes per upload call.
    static let uploadChunk = 8 << 20

    let service: JobNodeService

    init(actorSystem: FleetActorSystem, service: JobNodeService) {
        self.actorSystem = actorSystem
        self.service = service
    }

    distributed func info() -> JobNodeInfo {
        JobNodeInfo(
            operatingSystem: PeerInfo.currentOperatingSystem, architecture: PeerInfo.currentArchitecture,
            workers: service.workers)
    }

    /// Whether the executable with this SHA-256 (hex) is in the node's cache.
    distributed func hasExecutable(_ digest: String) -> Bool {
        service.hasExecutable(digest)
    }

    /// Receives part of an executable; the last part checks the digest and installs it.
    /// `uploader` (random, per upload) keeps apart uploads of one executable by several job
    /// servers or launchers at once.
    distributed func upload(_ digest: String, uploader: UInt64, offset: Int, total: Int, bytes: [UInt8]) throws {
        try service.upload(digest, uploader: uploader, offset: offset, total: total, bytes: bytes)
    }

    /// Runs a job on a worker process of the executable `digest`.
    ///
    /// - Parameters:
    ///   - client: the calling job server's token, which with `job.ticket` names the job for
    ///     ``cancel(client:tickets:)``.
    distributed func run(executable digest: String, client: UInt64, job: BatchedJob) async throws -> JobOutput {
        try await service.run(executable: digest, client: client, jobs: [job])[0].get()
    }

    /// Runs several jobs of the executable `digest` at once; returns each one's outcome.
    distributed func runBatch(executable digest: String, client: UInt64, jobs: [BatchedJob]) async throws -> [BatchedOutcome] {
        try await service.run(executable: digest, client: client, jobs: jobs).map(BatchedOutcome.init)
    }

    /// Cancels jobs this client sent: one still queued here never runs, whether in the node's
    /// queue or in a worker process behind the job running there; one running stops with its
    /// worker process, which is replaced. Their calls return ``JobError/cancelled``.
    distributed func cancel(client: UInt64, tickets: [UInt64]) {
        service.cancel(client: client, tickets: tickets)
    }

    /// Runs the executable `digest` as a program of its own on this node, as `fleet launch
    /// --hosts` does with the ranks it places here: with `arguments`, and the node's environment
    /// plus `environment`. Its output goes to `output` as it comes; the call returns how the
    /// program ended, once all of it is sent. Cancelling the call, or losing the connection,
    /// kills the program.
    ///
    /// - Parameters:
    ///   - client: the launcher's token, which with `ticket` names the program for
    ///     ``signalProgram(client:ticket:signal:)``.
    distributed func runProgram(
        executable digest: String, client: UInt64, ticket: UInt64, arguments: [String], environment: [String: String],
        output: ProgramOutput
    ) async throws -> ProcessEnding {
        try await service.runProgram(
            executable: digest, key: ProgramKey(client: client, ticket: ticket), arguments: arguments,
            environment: environment, output: output)
    }

    /// Sends `signal` to a program this client runs here, and to its process group; returns
    /// whether it was still running.
    distributed func signalProgram(client: UInt64, ticket: UInt64, signal: Int32) -> Bool {
        service.signalProgram(ProgramKey(client: client, ticket: ticket), signal: signal)
    }

    /// The node's own table: jobs run here, per client executable.
    distributed func stats() -> [NodeStats] {
        service.stats()
    }
}

/// One job of a batch sent to a node.
struct BatchedJob: Codable, Sendable {
    /// The job's number at its job server, which cancels it by this number.
    var ticket: UInt64
    var function: String
    var input: [UInt8]
}

/// One job's outcome in a batch: its output, or its error as a reply carries it.
enum BatchedOutcome: Codable, Sendable {
    case output(JobOutput)
    case error([UInt8])

    init(_ result: Result<JobOutput, any Error>) {
        switch result {
        case let .success(output): self = .output(output)
        case let .failure(error): self = .error(ErrorEnvelope.encode(error))
        }
    }

    var result: Result<JobOutput, any Error> {
        switch self {
        case let .output(output): .success(output)
        case let .error(bytes): .failure(ErrorEnvelope.decode(bytes))
        }
    }
}

/// Why a node refused an upload or a job.
public enum JobNodeError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    /// The node could not start a program (``JobNode/runProgram(executable:client:ticket:arguments:environment:output:)``).
    case cannotStart(String)
    /// The uploaded bytes do not hash to the announced digest.
    case digestMismatch(expected: String, actual: String)
    /// A job names an executable the node does not have.
    case unknownExecutable(String)
    /// The upload was malformed (offsets out of order, size over the limit).
    case badUpload(String)

    public var description: String {
        switch self {
        case let .digestMismatch(expected, actual): "uploaded executable hashes to \(actual), not \(expected)"
        case let .unknownExecutable(digest): "the node has no executable \(digest)"
        case let .badUpload(detail): "bad upload: \(detail)"
        case let .cannotStart(reason): "the node cannot start the program: \(reason)"
        }
    }
}

/// The state behind a ``JobNode``: the executable cache and one set of worker processes per
/// executable.
final class JobNodeService: Sendable {
    let workers: Int
    let cacheDirectory: URL
    /// The largest executable accepted.
    static let maximumExecutableSize = 2 << 30

    private struct Upload {
        var path: URL
        var handle: FileHandle
        var received: Int
    }

    private struct Pool {
        var queue: PortableJobQueue
        var workers: Task<ProcessWorkers, any Error>
    }

    private let uploads = Mutex<[String: Upload]>([:])
    private let pools = Mutex<[String: Pool]>([:])
    private let done = Mutex<[String: NodeStats]>([:])
    /// The jobs sent here that have no outcome yet, by client and ticket, for ``cancel(client:tickets:)``.
    private let registry = Mutex<[RunningJob.Key: RunningJob]>([:])
    /// The programs running here for launchers (``runProgram(executable:key:arguments:environment:output:)``).
    let programs = Mutex<[ProgramKey: ChildProcess]>([:])

    init(workers: Int, cacheDirectory: URL) throws {
        self.workers = max(1, workers)
        self.cacheDirectory = cacheDirectory
        try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    /// `$XDG_CACHE_HOME/fleet/executables`, or `~/.cache/fleet/executables`.
    static var defaultCacheDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("fleet/executables")
    }

    func path(of digest: String) -> URL {
        cacheDirectory.appendingPathComponent(digest)
    }

    private static func isDigest(_ text: String) -> Bool {
        text.count == 64 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    func hasExecutable(_ digest: String) -> Bool {
        Self.isDigest(digest) && FileManager.default.isExecutableFile(atPath: path(of: digest).path)
    }

    func upload(_ digest: String, uploader: UInt64, offset: Int, total: Int, bytes: [UInt8]) throws {
        guard Self.isDigest(digest) else { throw JobNodeError.badUpload("'\(digest)' is not a SHA-256 digest") }
        guard total > 0, total <= Self.maximumExecutableSize else {
            throw JobNodeError.badUpload("size \(total) outside 1...\(Self.maximumExecutableSize)")
        }
        let key = "\(digest)-\(uploader)"
        try uploads.withLock { uploads in
            if offset == 0 {
                if let abandoned = uploads.removeValue(forKey: key) {
                    try? abandoned.handle.close()
                    try? FileManager.default.removeItem(at: abandoned.path)
                }
                let partial = cacheDirectory.appendingPathComponent("\(digest).partial-\(UInt32.random(in: .min ... .max))")
                guard FileManager.default.createFile(atPath: partial.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw JobNodeError.badUpload("cannot write to \(cacheDirectory.path)")
                }
                uploads[key] = Upload(path: partial, handle: try FileHandle(forWritingTo: partial), received: 0)
            }
            guard var upload = uploads[key], upload.received == offset, offset + bytes.count <= total else {
                throw JobNodeError.badUpload("chunk at \(offset) out of order")
            }
            try upload.handle.write(contentsOf: bytes)
            upload.received += bytes.count
            uploads[key] = upload
            guard upload.received == total else { return }
            uploads[key] = nil
            try upload.handle.close()
            let actual = try Self.sha256(of: upload.path)
            guard actual == digest else {
                try? FileManager.default.removeItem(at: upload.path)
                throw JobNodeError.digestMismatch(expected: digest, actual: actual)
            }
            guard !hasExecutable(digest) else {
                // Another upload of the same bytes finished first.
                try? FileManager.default.removeItem(at: upload.path)
                return
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: upload.path.path)
            _ = try? FileManager.default.removeItem(at: path(of: digest))
            try FileManager.default.moveItem(at: upload.path, to: path(of: digest))
        }
    }

    /// The SHA-256 of a file, as lowercase hex.
    static func sha256(of file: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Runs `jobs` on the worker processes of executable `digest` and returns their outcomes,
    /// in order. Each job can be cancelled by `client` and its ticket while it runs; cancelling
    /// the call (the client went away, or gave the jobs up) cancels them all.
    func run(executable digest: String, client: UInt64, jobs: [BatchedJob]) async throws -> [Result<JobOutput, any Error>] {
        guard !jobs.isEmpty else { return [] }
        guard hasExecutable(digest) else { throw JobNodeError.unknownExecutable(digest) }
        let pool = try await pool(for: digest)
        let batch = BatchCollector(count: jobs.count)
        let running = jobs.indices.map { index in
            RunningJob { outcome, elapsed in
                // A job that ran: `elapsed` is its run time in the worker process.
                if case .success = outcome { self.record(elapsed, for: digest) }
                batch.set(index, outcome.map { JobOutput(bytes: $0, runTime: elapsed) })
            }
        }
        let keys = jobs.map { RunningJob.Key(client: client, ticket: $0.ticket) }
        registry.withLock { registry in
            for (key, job) in zip(keys, running) { registry[key] = job }
        }
        defer {
            registry.withLock { registry in
                for (key, job) in zip(keys, running) where registry[key] === job { registry[key] = nil }
            }
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                batch.onCompletion { continuation.resume(returning: $0) }
                for (job, running) in zip(jobs, running) {
                    var portable = PortableJob(
                        id: job.ticket, function: job.function, input: job.input, retryable: false,
                        isFinished: { running.isFinished },
                        finish: { outcome, elapsed, _ in running.finish(outcome, elapsed) })
                    portable.whenAbandoned = { running.whenAbandoned($0) }
                    if !pool.queue.push(portable) { running.finish(.failure(JobError.serverShutDown), .zero) }
                }
            }
        } onCancel: {
            for job in running { job.abandon() }
        }
    }

    /// Cancels the jobs `client` sent with these tickets, where they are still running here.
    func cancel(client: UInt64, tickets: [UInt64]) {
        let jobs = registry.withLock { registry in
            tickets.compactMap { registry[RunningJob.Key(client: client, ticket: $0)] }
        }
        for job in jobs { job.abandon() }
    }

    private func record(_ elapsed: Duration, for digest: String) {
        done.withLock { $0[digest, default: NodeStats(name: String(digest.prefix(12)))].record(elapsed) }
    }

    /// The worker processes of executable `digest`, started on first use.
    private func pool(for digest: String) async throws -> Pool {
        let pool = pools.withLock { pools in
            if let pool = pools[digest] { return pool }
            let queue = PortableJobQueue()
            let program = (path(of: digest), [String]())
            let count = workers
            let pool = Pool(queue: queue, workers: Task { try await ProcessWorkers.start(workers: count, queue: queue, program: program) })
            pools[digest] = pool
            return pool
        }
        _ = try await pool.workers.value
        return pool
    }

    func stats() -> [NodeStats] {
        done.withLock { Array($0.values) }.sorted { $0.name < $1.name }
    }

    /// Stops every worker process, and kills the programs running here.
    func shutdown() async {
        killPrograms()
        let all = pools.withLock { pools in
            defer { pools = [:] }
            return Array(pools.values)
        }
        for pool in all {
            pool.queue.close(failing: JobError.serverShutDown)
            await (try? pool.workers.value)?.shutdown()
        }
    }
}

/// Collects a batch's outcomes as its jobs finish, in any order; hands them on, in the jobs'
/// order, when the last one arrives.
private final class BatchCollector: Sendable {
    typealias Outcome = Result<JobOutput, any Error>
    private let state: Mutex<(outcomes: [Outcome?], left: Int, done: (@Sendable ([Outcome]) -> Void)?)>

    init(count: Int) {
        state = Mutex((Array(repeating: nil, count: count), count, nil))
    }

    func onCompletion(_ done: @escaping @Sendable ([Outcome]) -> Void) {
        state.withLock { $0.done = done }
    }

    func set(_ index: Int, _ outcome: Outcome) {
        let finished: (([Outcome]) -> Void, [Outcome])? = state.withLock { state in
            guard state.outcomes[index] == nil else { return nil }
            state.outcomes[index] = outcome
            state.left -= 1
            guard state.left == 0, let done = state.done else { return nil }
            return (done, state.outcomes.map { $0! })
        }
        if let (done, outcomes) = finished { done(outcomes) }
    }
}

/// A job a node is running for a client: its outcome is set once, by its worker or by
/// ``abandon()``; abandoning it runs what its worker registered (stopping the worker process
/// when the job is running there).
private final class RunningJob: Sendable {
    struct Key: Hashable, Sendable {
        var client: UInt64
        var ticket: UInt64
    }

    private let deliver: @Sendable (Result<[UInt8], any Error>, Duration) -> Void
    private struct State {
        var finished = false
        var abandoned = false
        var onAbandon: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    init(deliver: @escaping @Sendable (Result<[UInt8], any Error>, Duration) -> Void) {
        self.deliver = deliver
    }

    var isFinished: Bool { state.withLock { $0.finished } }

    /// Sets the outcome, unless there is one already.
    func finish(_ outcome: Result<[UInt8], any Error>, _ elapsed: Duration) {
        let first = state.withLock { state in
            defer { state.finished = true; state.onAbandon = [] }
            return !state.finished
        }
        if first { deliver(outcome, elapsed) }
    }

    /// Runs `action` if the job is abandoned while it runs (at once, if it was already).
    func whenAbandoned(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            if state.abandoned { return true }
            if !state.finished { state.onAbandon.append(action) }
            return false
        }
        if now { action() }
    }

    /// Fails the job with ``JobError/cancelled`` and stops it where it runs.
    func abandon() {
        let actions: [@Sendable () -> Void]? = state.withLock { state in
            guard !state.finished else { return nil }
            defer { state.finished = true; state.abandoned = true; state.onAbandon = [] }
            return state.onAbandon
        }
        guard let actions else { return }
        deliver(.failure(JobError.cancelled), .zero)
        for action in actions { action() }
    }
}
