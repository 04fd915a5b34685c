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

    @Option(help: "echo: also measure an echo server already listening on 127.0.0.1, as NAME:PORT (Benchmarks/Peers/run passes Python asyncio's).")
    var peer: String?

    func validate() throws {
        if let peer {
            guard topic == .echo else { throw ValidationError("--peer is for the echo topic.") }
            guard parsedPeer(peer) != nil else { throw ValidationError("--peer takes NAME:PORT, e.g. asyncio:8888.") }
        }
    }

    private func parsedPeer(_ text: String) -> (name: String, port: Int)? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port),
              parts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
        return (String(parts[0]), port)
    }

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
            try await EchoBench.run(quick: quick, peer: peer.flatMap(parsedPeer)) { print($0); fflush(nil) }
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
