import CFleetMPI
import FleetWire
import Foundation
import Logging
import Synchronization

/// Starts the ranks of a job and watches them: what `fleet launch` runs (pyMPI's `mpirun`).
///
/// ```swift
/// let status = try await Launcher.run(Launcher.Job(ranks: 4, program: "/usr/local/bin/compute-pi"))
/// exit(status)
/// ```
///
/// It makes a secret for the job, starts `ranks` processes of the program with their rank, the
/// job's size, the secret and the launcher's control address in their environment, and hands
/// every rank the others' addresses once all have registered. When a rank dies, exits non-zero
/// or throws, the launcher tells every other rank (their operations throw
/// ``CommunicatorError/rankFailed(rank:reason:)``), gives them a moment to exit, kills those
/// that have not, and returns that rank's status. Signals it gets (SIGINT, SIGTERM) go on to the
/// ranks. It returns only once every process it started has ended.
public enum Launcher {
    /// What to launch.
    public struct Job: Sendable {
        /// How many ranks.
        public var ranks: Int
        /// The program every rank runs (a path, or a name looked up in `PATH`).
        public var program: String
        /// Its arguments.
        public var arguments: [String]
        /// Prefix every line a rank prints with `[rank] `.
        public var prefixOutput: Bool
        /// The timeout of each communicator operation in the ranks (`nil`: none).
        public var timeout: Duration?
        /// How long ranks have to exit after a failure before they are killed.
        public var gracePeriod: Duration
        /// Extra environment variables for the ranks.
        public var environment: [String: String]
        /// How the ranks exchange messages.
        public var transport: Transport
        /// Where the launcher logs.
        public var logger: Logger

        /// A job of `ranks` copies of `program`.
        public init(
            ranks: Int, program: String, arguments: [String] = [], prefixOutput: Bool = false,
            timeout: Duration? = nil, gracePeriod: Duration = .seconds(3), environment: [String: String] = [:],
            transport: Transport = .tcp, logger: Logger = Logger(label: "fleet.launch")
        ) {
            self.transport = transport
            self.ranks = ranks
            self.program = program
            self.arguments = arguments
            self.prefixOutput = prefixOutput
            self.timeout = timeout
            self.gracePeriod = gracePeriod
            self.environment = environment
            self.logger = logger
        }
    }

    /// How the ranks of a job exchange messages.
    public enum Transport: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Authenticated TCP connections, one per pair of ranks: within a host and across hosts.
        case tcp
        /// Rings in memory the ranks share: ranks on one host only, and the fastest there.
        case sharedMemory = "shm"
        /// A real MPI library, for programs built with the trait `MPI` and started by `mpirun`
        /// or `srun` (``Communicator/transport`` reports it; the launcher does not start them).
        /// With every rank on one host, messages travel through shared-memory rings in a
        /// window the library shares between them.
        case library = "mpi"

        public var description: String { rawValue }
    }

    /// What became of a job.
    public struct Outcome: Sendable, Hashable {
        /// The status to exit with: 0 when every rank finished in order; else the first failing
        /// rank's exit status (128 + the signal for one killed by a signal).
        public var status: Int32
        /// The first rank that failed, if one did.
        public var failedRank: Int?
        /// How it failed ("was killed by signal 9 (Killed)", or the error it threw).
        public var failureReason: String?
    }

    /// Runs `job` to its end.
    ///
    /// - Throws: ``CommunicatorError/invalidArgument(_:)`` for fewer than one rank; an error
    ///   when the program cannot be started.
    public static func run(_ job: Job) async throws -> Outcome {
        try await run(job, placing: Array(repeating: nil, count: max(0, job.ranks)), localHost: "127.0.0.1")
    }

    /// Runs `job` with rank `r` on `sites[r]`, or on this host where that is `nil`. Ranks on
    /// this host listen on `localHost`, an address the other sites reach (loopback when there
    /// are none); ranks elsewhere get only the job's environment and the launch variables.
    package static func run(_ job: Job, placing sites: [(any RankSite)?], localHost: String) async throws -> Outcome {
        guard job.ranks >= 1 else { throw CommunicatorError.invalidArgument("a job needs at least one rank, not \(job.ranks)") }
        guard job.transport != .library else {
            throw CommunicatorError.invalidArgument("ranks on an MPI library start under mpirun or srun (build with --traits MPI), not fleet launch")
        }
        precondition(sites.count == job.ranks, "one site per rank")
        let remote = sites.contains { $0 != nil }
        guard !remote || job.transport == .tcp else {
            throw CommunicatorError.invalidArgument("--transport \(job.transport) needs every rank on this host; ranks on other hosts talk over tcp")
        }
        let executable = try resolve(job.program)
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max)) }.joined()
        let configuration = WireConfiguration(credentials: .secret(try Secret(Array(secret.utf8))), logger: job.logger)
        // Ranks elsewhere reach the control port at the address their site names.
        let wildcard = sites.contains { $0?.launcherHost.contains(":") == true } || localHost.contains(":") ? "::" : "0.0.0.0"
        let listener = try await WireListener.bind(
            to: Endpoint(host: remote ? wildcard : localHost, port: 0), configuration: configuration)
        let control = LaunchControl(job: job)
        let serving = Task {
            try? await listener.run { connection in await control.serve(connection) }
        }
        var launch: [String: String] = [:]
        launch[LaunchEnvironment.sizeVariable] = String(job.ranks)
        launch[LaunchEnvironment.secretVariable] = secret
        if let timeout = job.timeout {
            launch[LaunchEnvironment.timeoutVariable] = String(timeout.seconds)
        }
        launch[LaunchEnvironment.transportVariable] = job.transport.rawValue
        var environment = ProcessInfo.processInfo.environment.merging(job.environment) { $1 }.merging(launch) { $1 }
        environment[LaunchEnvironment.launcherVariable] = Endpoint(host: localHost, port: listener.localEndpoint.port).description
        environment[LaunchEnvironment.hostVariable] = localHost
        var segment: Int32?
        if job.transport == .sharedMemory {
            let fd: Int32
            do {
                fd = fleet_shm_create(UInt32(job.ranks), try sharedMemoryRingCapacity(ranks: job.ranks, environment: environment))
                guard fd >= 0 else {
                    throw CommunicatorError.invalidArgument("cannot make the shared-memory segment: \(String(cString: strerror(-fd)))")
                }
            } catch {
                await listener.close()
                serving.cancel()
                throw error
            }
            segment = fd
            environment[LaunchEnvironment.segmentVariable] = String(fd)
        }
        defer { if let segment { close(segment) } }
        let signals = SignalForwarding(control: control)
        do {
            for rank in 0..<job.ranks {
                if let site = sites[rank] {
                    var environment = job.environment.merging(launch) { $1 }
                    environment[LaunchEnvironment.rankVariable] = String(rank)
                    environment[LaunchEnvironment.launcherVariable] =
                        Endpoint(host: site.launcherHost, port: listener.localEndpoint.port).description
                    environment[LaunchEnvironment.hostVariable] = site.rankHost
                    control.start(rank: rank, on: site, arguments: job.arguments, environment: environment)
                } else {
                    environment[LaunchEnvironment.rankVariable] = String(rank)
                    try control.start(rank: rank, executable: executable, arguments: job.arguments, environment: environment)
                }
            }
        } catch {
            control.startFailed("\(error)")   // "cannot start PATH: why"
        }
        // Cancelling the launch kills every rank (a node kills the ranks it runs); the launch
        // then ends as they do.
        let outcome = await withTaskCancellationHandler {
            await control.allExited()
        } onCancel: {
            control.forward(SIGKILL)
        }
        signals.stop()
        await listener.close()
        serving.cancel()
        _ = await serving.value
        return outcome
    }

    /// The bytes of each ring between two ranks: 64 MiB over all the job's rings, from 64 KiB to
    /// 4 MiB each, or `FLEET_MPI_SHM_RING_BYTES` (a power of two from 4 KiB to 1 GiB). Each rank
    /// maps the pages of the rings to and from it when it starts.
    ///
    /// - Throws: ``CommunicatorError/invalidArgument(_:)`` for a `FLEET_MPI_SHM_RING_BYTES` that
    ///   makes no ring.
    static func sharedMemoryRingCapacity(ranks: Int, environment: [String: String]) throws(CommunicatorError) -> UInt64 {
        if let text = environment[LaunchEnvironment.ringBytesVariable] {
            guard let asked = UInt64(text), fleet_shm_is_valid_shape(1, asked) != 0 else {
                throw .invalidArgument("\(LaunchEnvironment.ringBytesVariable)=\(text): \(LaunchEnvironment.ringSizeRule)")
            }
            return asked
        }
        return defaultRingCapacity(rings: UInt64(max(1, ranks * (ranks - 1))), budget: 64 << 20)
    }

    /// The largest ring from 64 KiB to 4 MiB (a power of two) of which `rings` take at most
    /// `budget` bytes; 64 KiB when even those take more.
    static func defaultRingCapacity(rings: UInt64, budget: UInt64) -> UInt64 {
        var capacity: UInt64 = 64 << 10
        while capacity < 4 << 20, capacity * 2 * rings <= budget { capacity *= 2 }
        return capacity
    }

    /// The program's path: as given when it has a slash, else the first match in `PATH`.
    package static func resolve(_ program: String) throws -> URL {
        if program.contains("/") { return URL(fileURLWithPath: program) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(program)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw CommunicatorError.invalidArgument("no program '\(program)' in PATH")
    }
}

/// The launcher's state: the rank processes, their registrations, and the first failure.
final class LaunchControl: Sendable {
    private let job: Launcher.Job
    private struct State {
        /// The ranks started, here or on other sites.
        var processes: [Int: any RankHandle] = [:]
        var exited: [Int: Int32] = [:]
        var registered: [Int: String] = [:]
        var finished: Set<Int> = []
        /// Ranks whose control connection is still open: what they said is not all read yet.
        var controlOpen: Set<Int> = []
        /// Ranks that exited with a failing status while their control connection was still
        /// open: the failure is decided once their last words are read.
        var failedExits: [Int: (reason: String, status: Int32)] = [:]
        /// The ranks' connections, to tell them of a failure.
        var notify: [Int: AsyncStream<LaunchMessage>.Continuation] = [:]
        var tableWaiters: [CheckedContinuation<[String]?, Never>] = []
        var table: [String]?
        var failure: (rank: Int, reason: String, status: Int32)?
        var exitWaiter: CheckedContinuation<Launcher.Outcome, Never>?
        var startFailure: String?
    }
    private let state = Mutex(State())

    init(job: Launcher.Job) {
        self.job = job
    }

    func start(rank: Int, executable: URL, arguments: [String], environment: [String: String]) throws {
        let output = job.prefixOutput ? OutputPrefixer(rank: rank, isError: false) : nil
        let errors = job.prefixOutput ? OutputPrefixer(rank: rank, isError: true) : nil
        let process = try state.withLock { state in
            let process = try ChildProcess.spawn(
                executable: executable.path, arguments: arguments, environment: environment,
                output: output?.writeEnd, errors: errors?.writeEnd)
            state.processes[rank] = process
            return process
        }
        output?.start()
        errors?.start()
        process.whenEnded { [weak self] ending in self?.exited(rank: rank, ending) }
    }

    /// Starts `rank` on another host's `site`; its output comes back through the site.
    func start(rank: Int, on site: any RankSite, arguments: [String], environment: [String: String]) {
        let output = RankOutput(rank: rank, prefix: job.prefixOutput)
        let remote = state.withLock { state in
            let remote = site.start(rank: rank, arguments: arguments, environment: environment) { bytes, isError in
                output.write(bytes, isError: isError)
            }
            state.processes[rank] = remote
            return remote
        }
        Task { [weak self] in
            do {
                let ending = try await remote.ending
                output.finish()
                self?.exited(rank: rank, ending)
            } catch {
                output.finish()
                self?.lost(rank: rank, reason: site.failure(error))
            }
        }
    }

    /// Starting a rank failed: stop the ones that started.
    func startFailed(_ reason: String) {
        let started = state.withLock { state in
            state.startFailure = reason
            if state.failure == nil { state.failure = (-1, reason, 127) }
            return Array(state.processes.values)
        }
        job.logger.error("\(reason)")
        for process in started { process.signal(SIGKILL) }
        finishIfAllExited()
    }

    /// Serves one rank's control connection.
    func serve(_ connection: WireConnection) async {
        var iterator = connection.inbound.makeAsyncIterator()
        guard let first = try? await iterator.next(),
              case let .register(rank, endpoint)? = try? first.decode(LaunchMessage.self),
              (0..<job.ranks).contains(rank) else { return }
        let (stream, notify) = AsyncStream<LaunchMessage>.makeStream()
        let accepted = state.withLock { state in
            // A rank counted lost already stays so.
            guard state.registered[rank] == nil, state.exited[rank] == nil else { return false }
            state.registered[rank] = endpoint
            state.notify[rank] = notify
            state.controlOpen.insert(rank)
            return true
        }
        guard accepted else { return }
        defer { controlClosed(rank) }
        tableIfComplete()
        guard let table = await waitForTable() else { return }
        do {
            try await connection.send(Frame(kind: .message, encoding: LaunchMessage.table(table)))
        } catch {
            return
        }
        let pendingFailure = state.withLock { $0.failure }
        if let pendingFailure { notify.yield(.abort(rank: pendingFailure.rank, reason: pendingFailure.reason)) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in stream {
                    guard let frame = try? Frame(kind: .message, encoding: message) else { continue }
                    try? await connection.send(frame)
                }
            }
            do {
                while let frame = try await iterator.next() {
                    switch try frame.decode(LaunchMessage.self) {
                    case .finished: state.withLock { _ = $0.finished.insert(rank) }
                    case let .failed(reason): failed(rank: rank, reason: reason, status: 1)
                    default: break
                    }
                }
            } catch {}
            notify.finish()
        }
    }

    private func tableIfComplete() {
        let (table, waiters) = state.withLock { state -> ([String]?, [CheckedContinuation<[String]?, Never>]) in
            guard state.table == nil, state.registered.count == job.ranks else { return (nil, []) }
            let table = (0..<job.ranks).map { state.registered[$0]! }
            state.table = table
            defer { state.tableWaiters = [] }
            return (table, state.tableWaiters)
        }
        for waiter in waiters { waiter.resume(returning: table) }
    }

    private func waitForTable() async -> [String]? {
        await withCheckedContinuation { continuation in
            let now: [String]?? = state.withLock { state in
                if let table = state.table { return .some(table) }
                if state.failure != nil { return .some(nil) }
                state.tableWaiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// A rank failed: remember the first failure, tell every rank, and kill those still
    /// running after the grace period.
    func failed(rank: Int, reason: String, status: Int32) {
        let first: (notify: [AsyncStream<LaunchMessage>.Continuation], waiters: [CheckedContinuation<[String]?, Never>])? = state.withLock { state in
            guard state.failure == nil else { return nil }
            state.failure = (rank, reason, status)
            defer { state.tableWaiters = [] }
            return (Array(state.notify.filter { $0.key != rank }.values), state.tableWaiters)
        }
        guard let first else { return }
        job.logger.debug("rank \(rank) failed: \(reason)")
        for waiter in first.waiters { waiter.resume(returning: nil) }
        for channel in first.notify { channel.yield(.abort(rank: rank, reason: reason)) }
        let grace = job.gracePeriod
        Thread.detachNewThread { [self] in
            Thread.sleep(forTimeInterval: grace.seconds)
            let running = state.withLock { state in state.processes.filter { state.exited[$0.key] == nil }.map(\.value) }
            for process in running { process.signal(SIGKILL) }
        }
    }

    private func exited(rank: Int, _ ending: ProcessEnding) {
        let status = ending.status
        let reason = ending.description
        let (joined, othersJoined, lastWordsPending) = state.withLock { state in
            state.exited[rank] = status
            let pending = status != 0 && state.controlOpen.contains(rank)
            if pending { state.failedExits[rank] = (reason, status) }
            return (state.registered[rank] != nil, !state.registered.isEmpty, pending)
        }
        if lastWordsPending {
            // The error it reported (if it threw) may still be on its control connection, which
            // the exit closes: wait for that, but not for ever.
            Thread.detachNewThread { [weak self] in
                Thread.sleep(forTimeInterval: 1)
                self?.decideFailedExit(rank)
            }
        } else if status != 0 {
            failed(rank: rank, reason: reason, status: status)
        } else if joined {
            checkFinalized(rank)
        } else if othersJoined {
            // It ended without joining while others wait for it: they never would get a table.
            failed(rank: rank, reason: "exited before joining the job (does it use Communicator.world()?)", status: 1)
        }
        finishIfAllExited()
    }

    /// A rank on another site can no longer be reached, nor its end learned: it counts as
    /// failed and ended, whatever its control connection does (the rank, if it runs on, fails
    /// once the launcher is gone).
    private func lost(rank: Int, reason: String) {
        state.withLock { state in
            state.exited[rank] = 1
            state.controlOpen.remove(rank)
            state.failedExits[rank] = nil
        }
        failed(rank: rank, reason: reason, status: 1)
        finishIfAllExited()
    }

    /// Its control connection closed: all it said has been read.
    private func controlClosed(_ rank: Int) {
        state.withLock { _ = $0.controlOpen.remove(rank) }
        decideFailedExit(rank)
        checkFinalized(rank)
        finishIfAllExited()
    }

    /// A rank exited with a failing status and everything it said has been read (or waiting
    /// for that timed out): its failure is what it reported, else how it exited.
    private func decideFailedExit(_ rank: Int) {
        guard let exit = state.withLock({ $0.failedExits.removeValue(forKey: rank) }) else { return }
        failed(rank: rank, reason: exit.reason, status: exit.status)
        finishIfAllExited()
    }

    /// A rank that exited with status 0 without saying it finished left the others waiting in
    /// vain. Decided once both its exit and the end of its control connection are known (its
    /// last words may still be on the way when the exit is seen).
    private func checkFinalized(_ rank: Int) {
        let unfinished = state.withLock { state in
            state.exited[rank] == 0 && !state.controlOpen.contains(rank) && !state.finished.contains(rank)
        }
        if unfinished {
            failed(rank: rank, reason: "exited without finalizing its communicator (call finalize(), or use Communicator.withWorld)", status: 1)
        }
    }

    private func finishIfAllExited() {
        let outcome: (CheckedContinuation<Launcher.Outcome, Never>, Launcher.Outcome)? = state.withLock { state in
            let started = state.startFailure == nil ? job.ranks : state.processes.count
            guard state.exited.count >= started, state.controlOpen.isEmpty, let waiter = state.exitWaiter else { return nil }
            state.exitWaiter = nil
            let outcome = Launcher.Outcome(
                status: state.failure?.status ?? 0, failedRank: state.failure?.rank, failureReason: state.failure?.reason)
            return (waiter, outcome)
        }
        if let (waiter, outcome) = outcome { waiter.resume(returning: outcome) }
    }

    /// Waits until every rank process has ended.
    func allExited() async -> Launcher.Outcome {
        await withCheckedContinuation { continuation in
            state.withLock { $0.exitWaiter = continuation }
            finishIfAllExited()
        }
    }

    /// Sends `signal` to every rank still running.
    func forward(_ signal: Int32) {
        let running = state.withLock { state in state.processes.filter { state.exited[$0.key] == nil }.map(\.value) }
        for process in running { process.signal(signal) }
    }
}

/// Forwards SIGINT and SIGTERM to the ranks while the job runs.
private final class SignalForwarding {
    private let sources: [any DispatchSourceSignal]

    init(control: LaunchControl) {
        sources = [SIGINT, SIGTERM].map { signal in
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler { control.forward(signal) }
            source.resume()
            return source
        }
    }

    func stop() {
        for source in sources { source.cancel() }
        for signal in [SIGINT, SIGTERM] { Foundation.signal(signal, SIG_DFL) }
    }
}

/// Copies a rank's output to ours (``LauncherOutput``), each line prefixed with `[rank] `, on a
/// thread of its own.
private final class OutputPrefixer: Sendable {
    /// The end the rank writes to; closed here once the rank has it.
    let writeEnd: Int32
    private let readEnd: Int32
    private let rank: Int
    /// Whether this is the rank's standard error (else its output).
    private let isError: Bool

    init(rank: Int, isError: Bool) {
        let ends: (read: Int32, write: Int32) = (try? makeChildPipe()) ?? (-1, -1)
        readEnd = ends.read
        writeEnd = ends.write
        self.rank = rank
        self.isError = isError
    }

    /// Closes this side's copy of the write end and copies lines until the rank closes its own.
    func start() {
        close(writeEnd)
        let readEnd = readEnd, isError = isError
        let rank = rank
        let thread = Thread {
            var lines = LinePrefixer(rank: rank)
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                let complete = lines.append(chunk[..<count])
                LauncherOutput.write(complete[...], isError: isError)
            }
            let rest = lines.finish()
            LauncherOutput.write(rest[...], isError: isError)
            close(readEnd)
        }
        thread.name = "fleet-launch-output-\(rank)"
        thread.start()
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
