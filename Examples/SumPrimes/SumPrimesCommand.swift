// sum-primes: the seed's Parallel Python example — sum the primes below each input, in parallel.

import ArgumentParser
import FleetExamples
import FleetJobs
import FleetWire
import Foundation

/// The entry point: worker processes (copies of this program) serve jobs; otherwise the command.
@main
enum SumPrimesMain {
    static func main() async {
        await JobServer.runWorkerIfRequested()
        await SumPrimesCommand.main()
    }
}

/// `sum-primes [--workers N] [--processes] [INPUT ...]`: the seed's pp program on a ``JobServer``.
struct SumPrimesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sum-primes",
        abstract: "The seed's Parallel Python example: sum the primes below each input, one job per input.",
        discussion: """
            Without inputs it runs the seed's 8 jobs, 100000 to 100700. Jobs run on --workers \
            threads of this process (Swift has no GIL), or worker processes with --processes; the stats table shows what each node did.
            """
    )

    @Option(help: "Worker threads. Default: active cores.")
    var workers: Int?

    @Flag(help: "Run the jobs in worker processes (copies of this program) instead of threads.")
    var processes = false

    @Option(name: .customLong("node"), help: "A `fleet serve` node HOST:PORT to run jobs on too (repeatable).")
    var nodes: [String] = []

    @Flag(help: "Also run jobs on the nodes that announce themselves (fleet serve --announce), as they are heard (pp's ppservers=(\"*\",)).")
    var discover = false

    @Option(help: "The UDP port --discover listens on for announcements.")
    var discoveryPort: Int = NodeDiscovery.defaultPort

    @Option(help: "A file holding the nodes' shared secret (or set FLEET_SECRET).", completion: .file())
    var secretFile: String?

    @Argument(help: "The numbers to sum the primes below. Default: the seed's 100000 … 100700.")
    var inputs: [Int] = []

    func validate() throws {
        if let workers, workers < 0 || (workers == 0 && nodes.isEmpty && !discover) {
            throw ValidationError("--workers must be at least 1 (or 0 with --node or --discover).")
        }
        guard (1...65535).contains(discoveryPort) else { throw ValidationError("--discovery-port must be 1–65535.") }
    }

    func run() async throws {
        let endpoints = try nodes.map { try Endpoint($0) }
        try await SumPrimesProgram.run(
            workers: workers ?? ProcessInfo.processInfo.activeProcessorCount,
            isolation: processes ? .processes : .threads,
            nodes: endpoints,
            discovery: discover ? .broadcast(port: discoveryPort) : nil,
            credentials: endpoints.isEmpty && !discover ? nil : try Credentials.resolve(secretFile: secretFile, insecure: false),
            inputs: inputs.isEmpty ? SumPrimesProgram.seedInputs : inputs)
    }
}
