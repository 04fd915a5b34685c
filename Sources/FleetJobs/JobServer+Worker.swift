import FleetActors
import FleetWire
import Foundation

extension JobServer {
    /// Makes this process a job worker when its job server started it as one: serves jobs
    /// until the server lets it go or goes away, then exits. Otherwise returns at once.
    ///
    /// Call it first thing in `main`, before parsing arguments, in every program that uses
    /// ``JobIsolation/processes`` (the worker processes are copies of the program):
    ///
    /// ```swift
    /// @main enum Main {
    ///     static func main() async throws {
    ///         await JobServer.runWorkerIfRequested()
    ///         ...   // the program itself
    ///     }
    /// }
    /// ```
    public static func runWorkerIfRequested() async {
        let environment = ProcessInfo.processInfo.environment
        guard let endpointText = environment[ProcessWorkers.Environment.endpoint] else { return }
        do {
            let endpoint = try Endpoint(endpointText)
            let token = UInt64(environment[ProcessWorkers.Environment.token] ?? "") ?? 0
            try await serveAsWorker(at: endpoint, secret: environment[ProcessWorkers.Environment.secret] ?? "", token: token)
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("fleet job worker: \(error)\n".utf8))
            exit(70)
        }
    }

    /// Attaches this process as a worker to the job server whose workers attach at `endpoint`
    /// with `secret` and `token` (``workerInvitation``), and runs its jobs until the server
    /// lets it go.
    ///
    /// - Throws: when the server cannot be reached or refuses the secret, or when it goes away
    ///   before letting this worker go.
    package static func serveAsWorker(at endpoint: Endpoint, secret: String, token: UInt64) async throws {
        var configuration = FleetActorSystem.Configuration(credentials: .secret(try Secret(Array(secret.utf8))))
        configuration.callTimeout = .seconds(365 * 24 * 3600)
        configuration.wire.connectTimeout = .seconds(10)
        configuration.wire.logger.logLevel = .error
        let system = FleetActorSystem(configuration: configuration)
        do {
            let worker = JobWorker(actorSystem: system)
            let coordinator = try await system.resolve(JobCoordinator.self, named: JobCoordinator.publishedName, at: endpoint)
            // Returns when the server lets this worker go; throws when the server is gone.
            try await coordinator.attach(worker, token: token)
            await system.shutdown()
        } catch {
            await system.shutdown()
            throw error
        }
    }

    /// A server whose ``JobFunction`` jobs run on workers that other processes start — the ranks
    /// of an MPI job — and that attach with ``serveAsWorker(at:secret:token:)``: the worker named
    /// `names[i]` with token `i + 1`, each counted in the stats under its name. Closures run on
    /// one thread of this process.
    ///
    /// - Parameter host: the address to listen on: loopback when every worker runs on this
    ///   host, `0.0.0.0` when some run elsewhere.
    package convenience init(awaitingWorkers names: [String], on host: String) async throws {
        try await self.init(workers: 0, isolation: .threads, nodes: [], nodeConfiguration: nil, attaching: names, on: host)
    }

    /// Where and how workers attach to a server made with ``init(awaitingWorkers:on:)``.
    package var workerInvitation: (endpoint: Endpoint, secret: String)? {
        processes.map { ($0.endpoint, $0.secret) }
    }
}
