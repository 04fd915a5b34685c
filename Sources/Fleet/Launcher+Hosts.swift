import FleetActors
import FleetJobs
import FleetMPI
import FleetWire
import Foundation

extension Launcher {
    /// Runs `job` with its ranks spread over `hosts`, in order: the first host's slots take
    /// ranks 0, 1, …, then the next host's (mpirun's `--host`). What `fleet launch --hosts`
    /// runs.
    ///
    /// ```swift
    /// let outcome = try await Launcher.run(
    ///     Launcher.Job(ranks: 8, program: ".build/release/compute-pi"),
    ///     hosts: [.local(slots: 2), .node(try Endpoint("node-1:60000"), slots: 6)],
    ///     credentials: try Credentials.resolve(secretFile: nil, insecure: false))
    /// ```
    ///
    /// Ranks on ``LaunchHost/local(slots:)`` start here as with ``run(_:)``. On a node (a
    /// `fleet serve` with the same secret) the launcher ships the program as a job server
    /// ships itself (by SHA-256, only when the node lacks it) and the node starts the ranks;
    /// their output comes back here. Ranks talk over authenticated TCP (the transport must be
    /// `.tcp`), each listening on its host's address as the launcher reaches it; ranks here
    /// listen on the address this machine reaches the first node from. Failures work as on one
    /// host: a rank that dies, throws or is lost with its node (cut off, killed) fails the job,
    /// and the other ranks' operations throw an error naming it. Cancelling the launch, or the
    /// launcher dying, makes the nodes kill their ranks.
    ///
    /// - Throws: ``LaunchError`` when a host is unusable or the slots are too few; the errors
    ///   of ``run(_:)``.
    public static func run(_ job: Job, hosts: [LaunchHost], credentials: Credentials, tls: TLSOptions? = nil) async throws -> Outcome {
        guard hosts.contains(where: { $0.node != nil }) else {
            let slots = hosts.reduce(0) { $0 + ($1.slots ?? ProcessInfo.processInfo.activeProcessorCount) }
            guard hosts.isEmpty || slots >= job.ranks else { throw LaunchError.notEnoughSlots(ranks: job.ranks, slots: slots) }
            return try await run(job)
        }
        let program = try resolve(job.program).path
        var configuration = FleetActorSystem.Configuration(credentials: credentials)
        configuration.wire.tls = tls
        configuration.wire.logger = job.logger
        configuration.wire.connectTimeout = .seconds(5)
        configuration.heartbeatInterval = .seconds(1)   // A node cut off is noticed in ~3 s.
        let system = FleetActorSystem(configuration: configuration)
        do {
            let sites = try await attach(hosts, shipping: program, system: system)
            let slots = sites.reduce(0) { $0 + $1.slots }
            guard slots >= job.ranks else { throw LaunchError.notEnoughSlots(ranks: job.ranks, slots: slots) }
            var placing: [(any RankSite)?] = []
            for site in sites where placing.count < job.ranks {
                placing += Array(repeating: site.node, count: min(site.slots, job.ranks - placing.count))
            }
            let localHost = sites.lazy.compactMap(\.node).first?.launcherHost ?? "127.0.0.1"
            let outcome = try await run(job, placing: placing, localHost: localHost)
            await system.shutdown()
            return outcome
        } catch {
            await system.shutdown()
            throw error
        }
    }

    /// Reaches every node of `hosts` at once, and ships the program to each.
    private static func attach(
        _ hosts: [LaunchHost], shipping program: String, system: FleetActorSystem
    ) async throws -> [(node: NodeSite?, slots: Int)] {
        try await withThrowingTaskGroup(of: (Int, NodeSite?, Int).self) { group in
            for (index, host) in hosts.enumerated() {
                group.addTask {
                    guard let endpoint = host.node else {
                        return (index, nil, host.slots ?? ProcessInfo.processInfo.activeProcessorCount)
                    }
                    do {
                        let route = try await endpoint.route()
                        let node = try await ProgramNode.attach(endpoint, shipping: program, system: system)
                        return (index, NodeSite(node: node, rankHost: route.remote, launcherHost: route.local), host.slots ?? node.workers)
                    } catch {
                        throw LaunchError.nodeUnavailable(endpoint, "\(error)")
                    }
                }
            }
            var sites = [(node: NodeSite?, slots: Int)](repeating: (nil, 0), count: hosts.count)
            for try await (index, node, slots) in group { sites[index] = (node, slots) }
            return sites
        }
    }
}

/// A `fleet serve` node as FleetMPI's launcher sees it.
private struct NodeSite: RankSite {
    let node: ProgramNode
    let rankHost: String
    let launcherHost: String

    var name: String { "node \(node.endpoint)" }

    func failure(_ error: any Error) -> String {
        error is JobNodeError ? "could not be started on \(name): \(error)" : "was lost with \(name): \(error)"
    }

    func start(
        rank: Int, arguments: [String], environment: [String: String],
        output: @escaping @Sendable ([UInt8], Bool) -> Void
    ) -> any RemoteRank {
        node.start(arguments: arguments, environment: environment) { bytes, stream in
            output(bytes, stream == .standardError)
        }
    }
}

extension RemoteProgram: RemoteRank {}
