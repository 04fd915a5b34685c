// `fleet status HOST:PORT`: ask a worker node how it is doing (FleetJobs).

import ArgumentParser
import Fleet
import Foundation

/// `fleet status HOST:PORT`: workers, running and finished jobs of a `fleet serve` node.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the workers and job counts of a running `fleet serve` node.",
        discussion: """
            Connects to HOST:PORT, authenticates with the shared secret and prints the node's \
            system, workers, and the jobs it has run per client program, as Parallel Python's \
            print_stats() table.
            """
    )

    @Argument(help: ArgumentHelp("The node to ask, e.g. 127.0.0.1:60000.", valueName: "host:port"))
    var endpoint: String

    @Option(help: "A file holding the shared secret the node expects (or set FLEET_SECRET).", completion: .file())
    var secretFile: String?

    @Flag(help: "No secret: accepted only for loopback nodes.")
    var insecure = false

    func run() async throws {
        let node = try Endpoint(endpoint)
        var configuration = FleetActorSystem.Configuration(
            credentials: try Credentials.resolve(secretFile: secretFile, insecure: insecure))
        configuration.wire.logger.logLevel = .critical
        configuration.callTimeout = .seconds(10)
        let (info, stats) = try await JobNodeServer.status(of: node, configuration: configuration)
        print("Node \(node): \(info.operatingSystem)/\(info.architecture), \(info.workers) workers per program")
        print(JobStats(nodes: stats, elapsed: .zero).table.split(separator: "\n").dropLast().joined(separator: "\n"))
    }
}
