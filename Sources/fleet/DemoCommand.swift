// `fleet demo [SECTION]`: one runnable example per section of the seed chapter.

import ArgumentParser
import Fleet
import FleetExamples
import Foundation

/// `fleet demo [SECTION]`: runs the seed's examples, ported to Swift.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the seed chapter's examples, ported to Swift (all sections, or one).",
        discussion: """
            Sections, in the seed's order:
              threads      two threads print messages (the seed's MessageThread)
              extension    the seed's C loop on 1 vs N threads (Swift has no GIL),
                           and blocking calls on Swift's cooperative thread pool
              jobs         a job server for local cores and remote nodes (pp)
              rpc          remote actors (RPyC)
              mpi          ranks, messages and collectives (pyMPI)
              cooperative  many tasks on one thread (multitask)

            Without a SECTION, every section that is available runs in turn, and each one that is \
            not built yet is listed with the module and issue that will bring it. Asking for a \
            section that is not built yet is an error.

            The threads section uses shorter sleeps than the standalone message-threads example; \
            the options below override them.
            """
    )

    /// The sections of the seed chapter.
    enum Section: String, CaseIterable, ExpressibleByArgument {
        case threads
        case `extension`
        case jobs
        case rpc
        case mpi
        case cooperative

        /// The module that will bring a section that is not built yet; nil when it is available.
        var pending: PendingModule? {
            switch self {
            case .threads, .extension: nil
            case .rpc, .jobs, .mpi: nil
            case .cooperative: nil
            }
        }
    }

    @Argument(help: "The section to run. Default: every available section.")
    var section: Section?

    @Option(help: "threads: lines each thread prints.")
    var count: Int = 5

    @Option(help: "threads: multiplies the seed's sleeps (1 s and 2 s).")
    var sleepScale: Double = 0.05

    @Option(help: "extension: iterations of the C loop per thread (default: the seed's 1073741824).")
    var iterations: UInt64 = WasteTime.seedIterations

    @Option(help: "extension: threads in the parallel run. Default: active cores, at least 2.")
    var threads: Int?

    @Option(help: "extension: rounds of the 1-vs-N comparison; the best time of each run is reported.")
    var rounds: Int = WasteTime.defaultRounds

    @Flag(help: "extension: skip the cooperative-pool starvation demo.")
    var skipPoolDemo = false

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative.") }
        guard sleepScale >= 0 else { throw ValidationError("--sleep-scale must not be negative.") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1.") }
    }

    func run() async throws {
        guard let section else {
            for section in Section.allCases {
                if let module = section.pending {
                    print(NotAvailableYet("demo \(section.rawValue)", module: module))
                } else {
                    print("== demo \(section.rawValue) ==")
                    try await run(section)
                }
            }
            return
        }
        if let module = section.pending {
            throw NotAvailableYet("fleet demo \(section.rawValue)", module: module)
        }
        try await run(section)
    }

    private func run(_ section: Section) async throws {
        switch section {
        case .threads:
            await MessageThreads.run(count: count, sleepScale: sleepScale)
        case .extension:
            await WasteTime.run(
                iterations: iterations,
                threads: threads ?? WasteTime.defaultThreadCount,
                rounds: rounds,
                poolDemo: !skipPoolDemo
            )
        case .jobs:
            let workers = max(2, ProcessInfo.processInfo.activeProcessorCount)
            try await SumPrimesProgram.run(workers: workers, progress: false)
            print("\nThe same jobs in worker processes (copies of fleet; a crash takes down only its worker):")
            try await SumPrimesProgram.run(workers: workers, isolation: .processes, progress: false)
            print("\nAnd on a `fleet serve` node on loopback, no local workers (the node first receives this")
            print("executable, then runs the jobs on its worker processes):")
            let node = try await NodeProcess.start(fleet: try currentExecutable(), workers: 2)
            print("node \(node.endpoint) started, PID \(node.processIdentifier)")
            do {
                try await SumPrimesProgram.run(
                    workers: 0, nodes: [node.endpoint], credentials: .secret(try Secret(Array(node.secret.utf8))),
                    progress: false)
            } catch {
                await node.stop()
                throw error
            }
            await node.stop()
            print("node stopped")
        case .rpc:
            try await RPCDemo.run()
        case .mpi:
            try await MPIDemo.run(fleet: try currentExecutable())
        case .cooperative:
            try await CooperativeDemo.run()
        }
    }
}
