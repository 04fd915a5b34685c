// `fleet launch`: start N ranks of a message-passing program (FleetMPI, issue #5).

import ArgumentParser

/// `fleet launch -n N -- PROGRAM ARGS...`: the launcher for FleetMPI programs (pyMPI's `mpirun`).
struct LaunchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start N ranks of a FleetMPI program, locally or on several hosts (not available yet).",
        discussion: """
            Starts PROGRAM with ARGS as ranks 0..<N of one communicator, wires them together over \
            the chosen transport, forwards their output, and exits with the first non-zero status \
            of any rank. A rank that dies surfaces as an error in the others, never a hang.

            Example: fleet launch -n 4 -- .build/release/my-mpi-program --size 1000

            Not available yet: comes with \(PendingModule.mpi.reference).
            """
    )

    /// How ranks exchange messages.
    enum Transport: String, CaseIterable, ExpressibleByArgument {
        /// TCP sockets; works within one host and across hosts.
        case tcp
        /// Shared memory; ranks on the same host only.
        case shm
    }

    @Option(name: .customShort("n"), help: ArgumentHelp("Number of ranks to start.", valueName: "ranks"))
    var ranks: Int

    @Option(
        help: "Comma-separated hosts to spread the ranks over (each running `fleet serve`). Default: this host only.",
        transform: { $0.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty } }
    )
    var hosts: [String] = []

    @Option(help: "Transport between ranks: tcp, or shm for ranks on one host.")
    var transport: Transport = .tcp

    @Argument(
        parsing: .postTerminator,
        help: ArgumentHelp("The program every rank runs, then its arguments (after --).", valueName: "program-and-args")
    )
    var command: [String] = []

    func validate() throws {
        guard ranks >= 1 else { throw ValidationError("-n must be at least 1.") }
        guard !command.isEmpty else { throw ValidationError("Give the program to launch after --.") }
        if transport == .shm, hosts.count > 1 {
            throw ValidationError("--transport shm needs all ranks on one host.")
        }
    }

    func run() async throws {
        throw NotAvailableYet("fleet launch", module: .mpi)
    }
}
