// `fleet launch`: start N ranks of a message-passing program (FleetMPI).

import ArgumentParser
import Fleet
import Foundation

/// `fleet launch -n N -- PROGRAM ARGS...`: the launcher for FleetMPI programs (pyMPI's `mpirun`).
struct LaunchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start N ranks of a FleetMPI program, on this host or on fleet serve nodes, wired together.",
        discussion: """
            Starts PROGRAM with ARGS as ranks 0..<N of one communicator, each with a per-job \
            secret in its environment; the ranks connect to each other over authenticated TCP on \
            loopback (--transport tcp, the default), or through rings in shared memory \
            (--transport shm: ranks on this host, a few microseconds a message). Their output is passed through (--prefix marks each line with its rank). \
            When a rank dies, exits non-zero or throws, every other rank's operations fail with an \
            error naming it, ranks still running after a grace period are killed, and the launcher \
            exits with that rank's status (128 + signal for a signal). SIGINT and SIGTERM go on to \
            the ranks.

            With --hosts the ranks spread over hosts in order, each taking its slots: `local` \
            is this machine, any other HOST a `fleet serve` node at HOST:--node-port (or \
            HOST:PORT:SLOTS) with the same secret (--secret-file or FLEET_SECRET). The launcher \
            ships PROGRAM to each node (cached there by SHA-256), the nodes start its ranks, and \
            their output comes back here. A node that dies or is cut off fails its ranks' job.

            Examples:
              fleet launch -n 4 -- .build/release/compute-pi
              fleet launch -n 8 --hosts local:2,node-1:3,node-2:3 -- .build/release/compute-pi
            """
    )

    @Option(name: .customShort("n"), help: ArgumentHelp("Number of ranks to start.", valueName: "ranks"))
    var ranks: Int

    @Option(
        help: ArgumentHelp(
            "Comma-separated hosts to place the ranks on, in order: local[:SLOTS] for this machine, HOST[:SLOTS] or HOST:PORT:SLOTS for a `fleet serve` node (SLOTS: its cores here, its --workers on a node). Default: every rank here.",
            valueName: "hosts"),
        transform: { $0.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty } }
    )
    var hosts: [String] = []

    @Option(help: "The port of the nodes in --hosts that name none.")
    var nodePort: Int = LaunchHost.defaultNodePort

    @Option(help: "A file holding the nodes' shared secret (or set FLEET_SECRET); with --hosts.", completion: .file())
    var secretFile: String?

    @Option(help: "PEM file of the CA that signed the nodes' TLS certificates (nodes started with --tls-cert).", completion: .file())
    var tlsCa: String?

    @Option(help: "Transport between ranks: tcp, or shm for ranks on one host.")
    var transport: Launcher.Transport = .tcp

    @Flag(help: "Prefix every line a rank prints with [RANK].")
    var prefix = false

    @Option(help: "Seconds any one communicator operation may wait before it fails (default: no limit).")
    var timeout: Double?

    @Option(help: "Seconds ranks have to exit after another failed, before they are killed.")
    var grace: Double = 3

    @Argument(
        parsing: .postTerminator,
        help: ArgumentHelp("The program every rank runs, then its arguments (after --).", valueName: "program-and-args")
    )
    var command: [String] = []

    func validate() throws {
        guard ranks >= 1 else { throw ValidationError("-n must be at least 1.") }
        guard !command.isEmpty else { throw ValidationError("Give the program to launch after --.") }
        do {
            let parsed = try hosts.map { try LaunchHost($0, nodePort: nodePort) }
            if transport == .sharedMemory, parsed.contains(where: { $0.node != nil }) {
                throw ValidationError("--transport shm needs all ranks on this host; ranks on nodes talk over tcp.")
            }
        } catch let error as LaunchError {
            throw ValidationError("--hosts: \(error)")
        }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive.") }
        guard grace >= 0 else { throw ValidationError("--grace must not be negative.") }
    }

    func run() async throws {
        let job = Launcher.Job(
            ranks: ranks, program: command[0], arguments: Array(command.dropFirst()), prefixOutput: prefix,
            timeout: timeout.map { .milliseconds(Int64($0 * 1000)) }, gracePeriod: .milliseconds(Int64(grace * 1000)),
            transport: transport)
        let outcome: Launcher.Outcome
        if hosts.isEmpty {
            outcome = try await Launcher.run(job)
        } else {
            let places = try hosts.map { try LaunchHost($0, nodePort: nodePort) }
            let credentials = places.contains { $0.node != nil }
                ? try Credentials.resolve(secretFile: secretFile, insecure: false) : .insecure
            outcome = try await Launcher.run(
                job, hosts: places, credentials: credentials, tls: tlsCa.map { TLSOptions(trustRootsFile: $0) })
        }
        if let rank = outcome.failedRank {
            let who = rank >= 0 ? "rank \(rank)" : "the launch"
            FileHandle.standardError.write(Data("fleet launch: \(who) failed: \(outcome.failureReason ?? "")\n".utf8))
        }
        if outcome.status != 0 { throw ExitCode(outcome.status) }
    }
}

extension Launcher.Transport: ExpressibleByArgument {}
