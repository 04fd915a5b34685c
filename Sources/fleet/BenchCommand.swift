// `fleet bench TOPIC`: quick measurements of one part of Fleet.

import ArgumentParser
import Fleet
import FleetExamples
import Foundation

/// `fleet bench TOPIC`: runs one quick benchmark and prints measured figures.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a quick benchmark of one part of Fleet and print measured figures.",
        discussion: """
            Topics:
              wire   frame and binary coder throughput (FleetWire)
              rpc    remote actor call latency and throughput (FleetActors)
              jobs   job server throughput on local and remote workers (FleetJobs)
              echo   cooperative echo server on one thread (FleetCooperative)
              mpi    point-to-point and collective latency (FleetMPI)

            Figures are printed one per line as "metric<TAB>value<TAB>unit", the format \
            Benchmarks/Peers/run reads. The full suites live in Benchmarks/ (package-benchmark) with side-by-side Python peers.
            """
    )

    /// What to benchmark.
    enum Topic: String, CaseIterable, ExpressibleByArgument {
        case wire, rpc, jobs, echo, mpi
    }

    @Argument(help: "What to benchmark.")
    var topic: Topic

    @Flag(help: "Short timings: a smoke test with noisier figures.")
    var quick = false

    @Flag(help: .hidden)
    var serve = false

    @Option(help: "mpi: the transport between the ranks, tcp or shm.")
    var transport: Launcher.Transport = .tcp

    func run() async throws {
        switch topic {
        case .wire:
            try await WireBench.run(quick: quick) { print($0) }
        case .rpc:
            if serve {
                try await RPCBench.serve()
            } else {
                try await RPCBench.run(executable: try currentExecutable(), quick: quick) { print($0); fflush(nil) }
            }
        case .jobs:
            try await JobsBench.run(quick: quick, fleet: try currentExecutable()) { print($0); fflush(nil) }
        case .echo:
            throw NotAvailableYet("fleet bench echo", module: .cooperative)
        case .mpi:
            try await MPIBench.run(fleet: try currentExecutable(), quick: quick, transport: transport)
        }
    }
}

/// The path of the running executable, to start copies of it (benchmark servers, workers).
func currentExecutable() throws -> String {
    let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    return path
}
