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
            let secret = try Secret(Array((environment[ProcessWorkers.Environment.secret] ?? "").utf8))
            let token = UInt64(environment[ProcessWorkers.Environment.token] ?? "") ?? 0
            var configuration = FleetActorSystem.Configuration(credentials: .secret(secret))
            configuration.callTimeout = .seconds(365 * 24 * 3600)
            configuration.wire.logger.logLevel = .error
            let system = FleetActorSystem(configuration: configuration)
            let worker = JobWorker(actorSystem: system)
            let coordinator = try await system.resolve(JobCoordinator.self, named: JobCoordinator.publishedName, at: endpoint)
            // Returns when the server lets this worker go; throws when the server is gone.
            try? await coordinator.attach(worker, token: token)
            await system.shutdown()
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("fleet job worker: \(error)\n".utf8))
            exit(70)
        }
    }
}
