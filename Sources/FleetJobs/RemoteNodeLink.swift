import Crypto
import FleetActors
import FleetWire
import Foundation
import Logging
import Synchronization

/// A job server's link to one `fleet serve` node: checks that the node can run this program,
/// ships the executable when the node lacks it, and then pulls jobs for the node's workers
/// (two per worker, so that none waits a round trip). When the node dies or is cut off, the jobs
/// it held go back to the queue for other workers, and the link tries to reconnect.
final class RemoteNodeLink: Sendable {
    let endpoint: Endpoint
    private let system: FleetActorSystem
    private let queue: PortableJobQueue
    private let program: ShippedProgram
    private let logger: Logger

    /// Connection attempts in a row that may fail before the node is given up.
    static let maximumAttempts = 3

    init(endpoint: Endpoint, system: FleetActorSystem, queue: PortableJobQueue, program: ShippedProgram) {
        self.endpoint = endpoint
        self.system = system
        self.queue = queue
        self.program = program
        self.logger = system.configuration.wire.logger
    }

    /// Serves the node until the queue closes or the node cannot be reached `maximumAttempts`
    /// times in a row.
    ///
    /// - Returns: why the node was given up; `nil` when the queue closed.
    func run() async -> String? {
        var failures = 0
        var lastError = "not tried"
        while !Task.isCancelled, failures < Self.maximumAttempts {
            do {
                let node = try await attach()
                failures = 0
                await pull(node)
                if queue.isClosed { return nil }
            } catch let error as JobError {
                logger.error("node \(endpoint) cannot run this program: \(error)")
                return "\(endpoint): \(error)"
            } catch {
                failures += 1
                lastError = "\(error)"
                logger.warning("node \(endpoint) unreachable (\(failures)/\(Self.maximumAttempts)): \(error)")
            }
            if queue.isClosed { return nil }
            try? await Task.sleep(for: .seconds(1))
        }
        return Task.isCancelled ? nil : "\(endpoint): \(lastError)"
    }

    /// Connects, checks compatibility and ships the executable if need be.
    private func attach() async throws -> (JobNode, workers: Int) {
        let node = try await system.resolve(JobNode.self, named: JobNode.publishedName, at: endpoint)
        let info = try await node.info()
        guard info.operatingSystem == PeerInfo.currentOperatingSystem, info.architecture == PeerInfo.currentArchitecture else {
            throw JobError.nodeIncompatible(
                "node \(endpoint) is \(info.operatingSystem)/\(info.architecture), this program is "
                + "\(PeerInfo.currentOperatingSystem)/\(PeerInfo.currentArchitecture)")
        }
        let digest = try program.digest()
        if try await !node.hasExecutable(digest) {
            let bytes = try program.bytes()
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + JobNode.uploadChunk, bytes.count)
                try await node.upload(digest, offset: offset, total: bytes.count, bytes: Array(bytes[offset..<end]))
                offset = end
            }
        }
        return (node, info.workers)
    }

    private func pull(_ attached: (JobNode, workers: Int)) async {
        let (node, workers) = attached
        let digest = (try? program.digest()) ?? ""
        await withTaskGroup(of: Void.self) { group in
            // Two jobs per worker always; more while plenty are queued, to cover round trips.
            for _ in 0..<(max(1, workers) * 2) {
                group.addTask { await self.pullJobs(node, digest: digest, backlog: 1) }
            }
            for _ in 0..<(max(1, workers) * Self.burstPerWorker) {
                group.addTask { await self.pullJobs(node, digest: digest, backlog: Self.burstBacklog) }
            }
            // When one puller finds the node gone, the others stop too.
            _ = await group.next()
            group.cancelAll()
        }
    }

    /// Extra jobs per node worker held while at least ``burstBacklog`` jobs wait.
    static let burstPerWorker = 24
    static let burstBacklog = 32

    private func pullJobs(_ node: JobNode, digest: String, backlog: Int) async {
        while !Task.isCancelled, var job = await queue.next(backlog: backlog) {
            if job.isFinished() { continue }
            job.attempts += 1
            let start = ContinuousClock.now
            do {
                let output = try await node.run(executable: digest, function: job.function, input: job.input)
                job.complete(.success(output), start.duration(to: .now), node: endpoint.description)
            } catch let error as RemoteCallError {
                switch error {
                case .connectionLost, .systemShutDown, .unreachable, .timedOut:
                    // The node is gone or cut off: the job goes back for another worker.
                    job.attempts -= 1
                    if !queue.push(job, first: true) { job.complete(.failure(JobError.serverShutDown), .zero) }
                    return
                default:
                    job.complete(.failure(error), start.duration(to: .now), node: endpoint.description)
                }
            } catch is CancellationError {
                job.attempts -= 1
                if !queue.push(job, first: true) { job.complete(.failure(JobError.serverShutDown), .zero) }
                return
            } catch let error as JobError {
                if case .serverShutDown = error {
                    // The node is shutting down: the job goes back for another worker.
                    job.attempts -= 1
                    if !queue.push(job, first: true) { job.complete(.failure(JobError.serverShutDown), .zero) }
                    return
                }
                if case .workerCrashed = error, job.retryable, job.attempts < PortableJob.maximumAttempts,
                   queue.push(job, first: true) {
                    continue
                }
                job.complete(.failure(error), start.duration(to: .now), node: endpoint.description)
            } catch {
                job.complete(.failure(error), start.duration(to: .now), node: endpoint.description)
            }
        }
    }
}

/// This program as nodes receive it: the running executable's bytes and their SHA-256, read
/// once, when a node first needs them.
final class ShippedProgram: Sendable {
    private let cached = Mutex<(digest: String, bytes: [UInt8])?>(nil)

    func digest() throws -> String { try load().digest }

    func bytes() throws -> [UInt8] { try load().bytes }

    private func load() throws -> (digest: String, bytes: [UInt8]) {
        try cached.withLock { cached in
            if let cached { return cached }
            let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            cached = (digest, bytes)
            return (digest, bytes)
        }
    }
}
