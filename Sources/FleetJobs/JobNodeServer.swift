import FleetActors
import FleetWire
import Foundation
import ServiceLifecycle

/// A node that runs jobs for job servers elsewhere: Parallel Python's `ppserver.py`, and what
/// `fleet serve` runs.
///
/// A job server (``JobServer/init(workers:isolation:nodes:discovery:credentials:tls:)``) that connects with
/// the shared secret ships its executable once (cached by SHA-256 under `cacheDirectory`), and
/// the node runs its ``JobFunction`` jobs on `workers` processes of that executable.
///
/// ```swift
/// let credentials = try Credentials.resolve(secretFile: "/etc/fleet/secret", insecure: false)
/// let node = try await JobNodeServer.start(
///     on: try Endpoint("0.0.0.0:60000"), workers: 8, configuration: .init(credentials: credentials))
/// // A swift-service-lifecycle service: serves until SIGTERM or SIGINT, then shuts down in order.
/// let group = ServiceGroup(services: [node], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public final class JobNodeServer: Service, Sendable {
    /// Where the node listens (the real port when 0 was asked for).
    public let endpoint: Endpoint
    private let system: FleetActorSystem
    private let service: JobNodeService
    private let announcer: NodeAnnouncer?

    private init(endpoint: Endpoint, system: FleetActorSystem, service: JobNodeService, announcer: NodeAnnouncer?) {
        self.endpoint = endpoint
        self.system = system
        self.service = service
        self.announcer = announcer
    }

    /// Starts a node listening on `endpoint`.
    ///
    /// - Parameters:
    ///   - workers: worker processes per client program (default: the machine's active cores).
    ///   - cacheDirectory: where shipped executables are kept (default:
    ///     `$XDG_CACHE_HOME/fleet/executables` or `~/.cache/fleet/executables`).
    ///   - announcing: where to announce the node, so that job servers listening there find
    ///     it (pp's `ppserver.py -a`; see ``NodeDiscovery``); `nil` announces nothing.
    /// - Throws: `SecretError.insecureRequiresLoopback(host:)` for insecure credentials on an
    ///   address other than loopback; ``NodeDiscoveryError``; socket and file errors.
    public static func start(
        on endpoint: Endpoint, workers: Int? = nil, configuration: FleetActorSystem.Configuration,
        cacheDirectory: URL? = nil, announcing discovery: NodeDiscovery? = nil
    ) async throws -> JobNodeServer {
        let service = try JobNodeService(
            workers: workers ?? ProcessInfo.processInfo.activeProcessorCount,
            cacheDirectory: cacheDirectory ?? JobNodeService.defaultCacheDirectory)
        var configuration = configuration
        configuration.callExecution = .eventLoop   // Jobs run in worker processes, never on a loop.
        let system = FleetActorSystem(configuration: configuration)
        do {
            let bound = try await system.listen(on: endpoint)
            system.publish(JobNode(actorSystem: system, service: service), as: JobNode.publishedName)
            var announcer: NodeAnnouncer?
            if let discovery {
                announcer = try await NodeAnnouncer(
                    announcing: bound, to: discovery, credentials: configuration.wire.credentials,
                    logger: configuration.wire.logger)
            }
            return JobNodeServer(endpoint: bound, system: system, service: service, announcer: announcer)
        } catch {
            await system.shutdown()
            throw error
        }
    }

    /// Worker processes per client program.
    public var workers: Int { service.workers }

    /// Jobs run here so far, per client program (named by the first 12 hex digits of its
    /// executable's SHA-256).
    public var stats: [NodeStats] { service.stats() }

    /// Serves until a graceful shutdown is asked for (or the task is cancelled), then shuts
    /// down: the `Service` side of the node, for a swift-service-lifecycle `ServiceGroup`.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops the worker processes and closes every connection; jobs in flight go back to their
    /// job servers, which run them elsewhere.
    public func shutdown() async {
        await announcer?.stop()
        await service.shutdown()
        await system.shutdown()
    }

    /// Asks the node at `endpoint` about itself and the jobs it has run (`fleet status`).
    public static func status(
        of endpoint: Endpoint, configuration: FleetActorSystem.Configuration
    ) async throws -> (info: JobNodeInfo, stats: [NodeStats]) {
        let system = FleetActorSystem(configuration: configuration)
        do {
            let node = try await system.resolve(JobNode.self, named: JobNode.publishedName, at: endpoint)
            let result = (try await node.info(), try await node.stats())
            await system.shutdown()
            return result
        } catch {
            await system.shutdown()
            throw error
        }
    }
}
