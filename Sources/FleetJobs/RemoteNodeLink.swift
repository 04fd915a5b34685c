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
    /// Names this job server to the node, which with a job's number names the job to cancel.
    private let client = UInt64.random(in: .min ... .max)

    /// Connection attempts in a row that may fail before the node is given up.
    static let maximumAttempts = 3

    init(endpoint: Endpoint, system: FleetActorSystem, queue: PortableJobQueue, program: ShippedProgram) {
        self.endpoint = endpoint
        self.system = system
        self.queue = queue
        self.program = program
        self.logger = system.configuration.wire.logger
    }

    /// Why a link gave up its node.
    struct End: Sendable {
        let reason: String
        /// The node can never run this program (another OS or architecture).
        let permanent: Bool
    }

    /// Serves the node until the queue closes or the node cannot be reached `maximumAttempts`
    /// times in a row.
    ///
    /// - Parameter attached: called each time the link has reached the node and the node has
    ///   the program.
    /// - Returns: why the node was given up; `nil` when the queue closed.
    func run(attached: @Sendable () -> Void = {}) async -> End? {
        var failures = 0
        var lastError = "not tried"
        while !Task.isCancelled, failures < Self.maximumAttempts {
            do {
                let node = try await attach()
                attached()
                failures = 0
                await pull(node)
                if queue.isClosed { return nil }
            } catch let error as JobError {
                logger.error("node \(endpoint) cannot run this program: \(error)")
                return End(reason: "\(endpoint): \(error)", permanent: true)
            } catch {
                failures += 1
                lastError = "\(error)"
                logger.warning("node \(endpoint) unreachable (\(failures)/\(Self.maximumAttempts)): \(error)")
            }
            if queue.isClosed { return nil }
            try? await Task.sleep(for: .seconds(1))
        }
        return Task.isCancelled ? nil : End(reason: "\(endpoint): \(lastError)", permanent: false)
    }

    /// Connects, checks compatibility and ships the executable if need be.
    private func attach() async throws -> (JobNode, workers: Int) {
        let (node, info) = try await JobNode.attach(at: endpoint, system: system, shipping: program)
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

    /// Jobs sent to the node in one call while plenty wait.
    static let batchSize = 16

    /// What became of a job the node was sent.
    private enum Settled {
        /// The job has its outcome, or runs again elsewhere: go on.
        case done
        /// The node is gone or going: stop pulling for it (the job is back in the queue).
        case nodeGone
    }

    private func pullJobs(_ node: JobNode, digest: String, backlog: Int) async {
        while !Task.isCancelled, let first = await queue.next(backlog: backlog) {
            // With a backlog, take a batch: one call carries many jobs, which hides the round
            // trips to the node.
            var jobs = ([first] + (backlog > 1 ? queue.take(upTo: Self.batchSize - 1) : [])).filter { !$0.isFinished() }
            if jobs.isEmpty { continue }
            for index in jobs.indices { jobs[index].attempts += 1 }
            for job in jobs {
                // A job cancelled or timed out while the node has it: the node stops it (and the
                // worker process running it, which it replaces).
                job.whenAbandoned { [client] in
                    Task { try? await node.cancel(client: client, tickets: [job.id]) }
                }
            }
            let start = ContinuousClock.now
            var outcomes: [Result<JobOutput, any Error>]
            do {
                let batch = jobs.map { BatchedJob(ticket: $0.id, function: $0.function, input: $0.input) }
                if batch.count == 1 {
                    outcomes = [.success(try await node.run(executable: digest, client: client, job: batch[0]))]
                } else {
                    outcomes = try await node.runBatch(executable: digest, client: client, jobs: batch).map(\.result)
                    guard outcomes.count == jobs.count else {
                        throw RemoteCallError.invalidResult("\(outcomes.count) outcomes for \(jobs.count) jobs")
                    }
                }
            } catch {
                outcomes = Array(repeating: .failure(error), count: jobs.count)
            }
            var gone = false
            for (job, outcome) in zip(jobs, outcomes) {
                if case .nodeGone = settle(job, outcome, start: start) { gone = true }
            }
            if gone { return }
        }
    }

    private func settle(_ job: PortableJob, _ outcome: Result<JobOutput, any Error>, start: ContinuousClock.Instant) -> Settled {
        let node = endpoint.description
        func requeue() -> Settled {
            queue.handBack(job)
            return .nodeGone
        }
        switch outcome {
        case let .success(output):
            job.complete(.success(output.bytes), output.runTime, node: node)
        case let .failure(error as RemoteCallError):
            switch error {
            case .connectionLost, .systemShutDown, .unreachable, .timedOut:
                return requeue()   // The node is gone or cut off: another worker takes the job.
            default:
                job.complete(.failure(error), start.duration(to: .now), node: node)
            }
        case .failure(is CancellationError):
            return requeue()
        case let .failure(error as JobError):
            switch error {
            case .serverShutDown:
                return requeue()   // The node is shutting down.
            case .workerCrashed where job.retryable && job.attempts < PortableJob.maximumAttempts:
                if !queue.push(job, first: true) { job.complete(.failure(error), start.duration(to: .now), node: node) }
            default:
                job.complete(.failure(error), start.duration(to: .now), node: node)
            }
        case let .failure(error):
            job.complete(.failure(error), start.duration(to: .now), node: node)
        }
        return .done
    }

}
