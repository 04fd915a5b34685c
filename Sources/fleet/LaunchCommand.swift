// `fleet launch`: start N ranks of a message-passing program (FleetMPI).

import ArgumentParser
import Fleet
import Foundation

/// `fleet launch -n N -- PROGRAM ARGS...`: the launcher for FleetMPI programs (pyMPI's `mpirun`).
struct LaunchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start N ranks of a FleetMPI program on this host, wired together.",
        discussion: """
            Starts PROGRAM with ARGS as ranks 0..<N of one communicator, each with a per-job \
            secret in its environment; the ranks connect to each other over authenticated TCP on \
            loopback (--transport tcp, the default), or through rings in shared memory \
            (--transport shm: ranks on this host, a few microseconds a message). Their output is passed through (--prefix marks each line with its rank). \
            When a rank dies, exits non-zero or throws, every other rank's operations fail with an \
            error naming it, ranks still running after a grace period are killed, and the launcher \
            exits with that rank's status (128 + signal for a signal). SIGINT and SIGTERM go on to \
            the ranks.

            Example: fleet launch -n 4 -- .build/release/compute-pi
            """
    )

    @Option(name: .customShort("n"), help: ArgumentHelp("Number of ranks to start.", valueName: "ranks"))
    var ranks: Int

    @Option(
        help: "Comma-separated hosts to spread the ranks over (each running `fleet serve`). Default: this host only.",
        transform: { $0.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty } }
    )
    var hosts: [String] = []

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
        if transport == .sharedMemory, !hosts.isEmpty {
            throw ValidationError("--transport shm needs all ranks on one host.")
        }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive.") }
        guard grace >= 0 else { throw ValidationError("--grace must not be negative.") }
    }

    func run() async throws {
        guard hosts.isEmpty else {
            throw LaunchUnavailable(what: "--hosts (ranks on fleet serve nodes)")
        }
        let outcome = try await Launcher.run(Launcher.Job(
            ranks: ranks, program: command[0], arguments: Array(command.dropFirst()), prefixOutput: prefix,
            timeout: timeout.map { .milliseconds(Int64($0 * 1000)) }, gracePeriod: .milliseconds(Int64(grace * 1000)),
            transport: transport))
        if let rank = outcome.failedRank {
            let who = rank >= 0 ? "rank \(rank)" : "the launch"
            FileHandle.standardError.write(Data("fleet launch: \(who) failed: \(outcome.failureReason ?? "")\n".utf8))
        }
        if outcome.status != 0 { throw ExitCode(outcome.status) }
    }
}

/// A launch option that comes in a later step of FleetMPI (issue #5).
struct LaunchUnavailable: Error, CustomStringConvertible {
    let what: String
    var description: String { "fleet launch: \(what) is not available yet (FleetMPI, issue #5); ranks run on this host over TCP" }
}

extension Launcher.Transport: ExpressibleByArgument {}
