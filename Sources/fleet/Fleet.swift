// The `fleet` command-line tool: the root command and what the subcommands share.
//
// The CLI is thin: it parses arguments and calls library API (FleetExamples now; FleetJobs,
// FleetActors, FleetMPI and FleetCooperative as their issues land). No logic lives only here.

import ArgumentParser
import Fleet

/// The entry point: a copy of `fleet` started as a job worker serves jobs; any other run is the
/// command line.
@main
enum FleetMain {
    static func main() async {
        await JobServer.runWorkerIfRequested()
        await FleetCommand.main()
    }
}

/// `fleet`: the root command. It only groups the subcommands.
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Parallel and distributed computing for Swift: demos, job server, launcher, benchmarks.",
        discussion: """
            Fleet gives Swift programs what the seed chapter "Packages for Multiprocessing" surveys \
            for Python: threads that really run in parallel, a job server for local cores and remote \
            machines (Parallel Python), transparent remote calls (RPyC), message passing with a \
            launcher (pyMPI) and cooperative single-threaded I/O (multitask).

            Start with `fleet demo`, which runs one example per section of the seed.
            """,
        subcommands: [
            DemoCommand.self,
            ServeCommand.self,
            LaunchCommand.self,
            StatusCommand.self,
            BenchCommand.self,
            ExampleCommand.self,
        ]
    )
}

/// A module that is planned but not built yet, and the issue that brings it.
struct PendingModule: Sendable, Equatable {
    /// The module's name, e.g. `FleetJobs`.
    let name: String
    /// The tracking issue number.
    let issue: Int

    /// `"FleetJobs, issue #4"`.
    var reference: String { "\(name), issue #\(issue)" }

    static let actors = PendingModule(name: "FleetActors", issue: 3)
    static let jobs = PendingModule(name: "FleetJobs", issue: 4)
    static let mpi = PendingModule(name: "FleetMPI", issue: 5)
}

/// The error every not-yet-built command throws: ArgumentParser prints its description as a
/// single `Error: …` line on standard error and exits with a non-zero status. Never a fake success.
struct NotAvailableYet: Error, CustomStringConvertible {
    /// What was asked for, e.g. `fleet serve` or `demo jobs`.
    let feature: String
    /// Who will provide it, e.g. `FleetJobs, issue #4`.
    let providedBy: String

    init(_ feature: String, module: PendingModule) {
        self.feature = feature
        self.providedBy = module.reference
    }

    var description: String { "\(feature): not available yet (\(providedBy))" }
}
