// `fleet status HOST:PORT`: ask a worker node how it is doing (FleetJobs, issue #4).

import ArgumentParser

/// `fleet status HOST:PORT`: workers, running and finished jobs of a `fleet serve` node.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the workers and job counts of a running `fleet serve` node (not available yet).",
        discussion: """
            Connects to HOST:PORT, authenticates with the shared secret and prints the node's \
            workers, jobs running and jobs done (Parallel Python's job server stats).

            Not available yet: comes with \(PendingModule.jobs.reference).
            """
    )

    @Argument(help: ArgumentHelp("The node to ask, e.g. 127.0.0.1:60000.", valueName: "host:port"))
    var endpoint: String

    @Option(help: "A file holding the shared secret the node expects (or set FLEET_SECRET).", completion: .file())
    var secretFile: String?

    func run() async throws {
        throw NotAvailableYet("fleet status", module: .jobs)
    }
}
