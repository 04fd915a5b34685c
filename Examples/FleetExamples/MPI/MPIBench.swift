import FleetMPI
import Foundation

/// `fleet bench mpi`: two ranks under the launcher measure a FleetMPI transport — one-way
/// ping-pong latency of 8 bytes, allreduce of one Double, barrier, allreduce of 1M Doubles — in
/// alternating rounds with raw TCP ping-pongs between the same two processes, the baselines the
/// TCP transport is held to: one with blocking sockets, and one whose reads poll the socket for
/// up to 1 ms first, as Fleet's ranks do (the faster of the two on a VM, where waking a thread
/// costs tens of microseconds). Medians over the rounds. Under `mpirun` on
/// an MPI library (the trait `MPI`), each round's ping-pong is followed by the library's own,
/// made with `MPI_Send` and `MPI_Recv` as a C program makes them: the baseline the trait is held
/// to, measured in the same processes a moment apart. (There, with both ranks on one host,
/// FleetMPI's messages travel through its rings in the library's shared window, unless
/// `FLEET_MPI_NODE_RINGS=0` keeps them in the library.)
public enum MPIBench {
    /// Launches the two ranks (copies of `fleet`, running `fleet example mpi-bench`) over
    /// `transport`.
    public static func run(fleet: String, quick: Bool, transport: Launcher.Transport = .tcp) async throws {
        let outcome = try await Launcher.run(Launcher.Job(
            ranks: 2, program: fleet, arguments: ["example", "mpi-bench"] + (quick ? ["--quick"] : []),
            transport: transport))
        guard outcome.status == 0 else {
            throw MPIDemoError(description: "the benchmark's ranks failed: rank \(outcome.failedRank ?? -1) \(outcome.failureReason ?? "")")
        }
    }

    /// What each rank runs; rank 0 prints the figures.
    public static func rank(quick: Bool) async throws {
        try await Communicator.withWorld { world in
            guard world.size == 2 else { throw MPIDemoError(description: "the MPI benchmark runs on 2 ranks, not \(world.size)") }
            let rounds = quick ? 3 : 5
            let count = quick ? 2_000 : 10_000
            let bulkCount = quick ? 5 : 20
            let peer = 1 - world.rank
            // The raw TCP baselines: rank 1 echoes 8-byte messages on threads of its own, with
            // blocking reads and with reads that poll first.
            let spin = Duration.milliseconds(1)
            let ports = try await world.bcast(
                world.rank == 1 ? [try RawTCP.startEchoServer(size: 8), try RawTCP.startEchoServer(size: 8, spin: spin)] : [], root: 1)
            let clients = world.rank == 0
                ? [("raw_tcp_one_way", try RawTCP.Client(port: ports[0], size: 8)),
                   ("raw_tcp_polling_one_way", try RawTCP.Client(port: ports[1], size: 8, spin: spin))]
                : []
            var figures: [String: [Double]] = [:]
            let bulk = [Double](repeating: 0.25, count: 1_000_000)
            for _ in 0..<rounds {
                try await world.barrier()
                for (name, client) in clients {
                    let samples = try await onThread { try client.roundTrips(count: count) }.sorted()
                    figures[name, default: []].append(samples[samples.count / 2] / 2 * 1e6)
                }
                // The polling echo thread of rank 1 polls for its spin after the last message:
                // it would take a processor from what is measured next.
                try await Task.sleep(for: spin * 3)
                try await world.barrier()
                let pingPong = try await pingPong(world, with: peer, count: count)
                figures["pingpong_8B_one_way", default: []].append(pingPong)
                // On an MPI library: the library's own ping-pong, made as a C program makes it,
                // right after (so both meet the machine in the same state).
                if let library = try await world.libraryPingPong(with: peer, count: count) {
                    let baseline = library.inSeconds * 1e6
                    figures["c_library_pingpong_one_way", default: []].append(baseline)
                    figures["pingpong_vs_c_library", default: []].append(pingPong / baseline)
                }

                try await world.barrier()
                var start = ContinuousClock.now
                for _ in 0..<count { _ = try await world.allreduce(1.5, .sum) }
                figures["allreduce_1_double", default: []].append(start.duration(to: .now).inSeconds / Double(count) * 1e6)

                start = .now
                for _ in 0..<count { try await world.barrier() }
                figures["barrier", default: []].append(start.duration(to: .now).inSeconds / Double(count) * 1e6)

                try await world.barrier()
                start = .now
                for _ in 0..<bulkCount { _ = try await world.allreduce(bulk, .sum) }
                let seconds = start.duration(to: .now).inSeconds / Double(bulkCount)
                figures["allreduce_1M_doubles", default: []].append(seconds * 1e3)
                figures["allreduce_1M_doubles_throughput", default: []].append(8e6 / seconds / 1e9)

                // The same in place (MPI_IN_PLACE): no result array to make.
                var field = bulk
                try await world.barrier()
                start = .now
                for _ in 0..<bulkCount { try await world.allreduce(inPlace: &field, .sum) }
                figures["allreduce_1M_doubles_in_place", default: []].append(start.duration(to: .now).inSeconds / Double(bulkCount) * 1e3)

                // Into a result array made beforehand, as the C and mpi4py peers do.
                var total = [Double](repeating: 0, count: bulk.count)
                try await world.barrier()
                start = .now
                for _ in 0..<bulkCount { try await world.allreduce(bulk, into: &total, .sum) }
                figures["allreduce_1M_doubles_into", default: []].append(start.duration(to: .now).inSeconds / Double(bulkCount) * 1e3)
            }
            guard world.rank == 0 else { return }
            print("# transport: \(world.transport), messages: \(world.messageLinks)")
            func median(_ name: String) -> Double {
                let values = (figures[name] ?? [0]).sorted()
                return values[values.count / 2]
            }
            let units = [
                ("raw_tcp_one_way", "us"), ("raw_tcp_polling_one_way", "us"), ("pingpong_8B_one_way", "us"), ("allreduce_1_double", "us"),
                ("barrier", "us"), ("allreduce_1M_doubles", "ms"), ("allreduce_1M_doubles_throughput", "GB/s"),
                ("allreduce_1M_doubles_in_place", "ms"), ("allreduce_1M_doubles_into", "ms"),
            ]
            for (name, unit) in units { print(BenchFigure(name, median(name), unit)) }
            print(BenchFigure("pingpong_vs_raw_tcp", median("pingpong_8B_one_way") / median("raw_tcp_one_way"), "x"))
            print(BenchFigure("pingpong_vs_raw_tcp_polling", median("pingpong_8B_one_way") / median("raw_tcp_polling_one_way"), "x"))
            if figures["pingpong_vs_c_library"] != nil {
                print(BenchFigure("c_library_pingpong_one_way", median("c_library_pingpong_one_way"), "us"))
                // The median of the rounds' ratios: each round's pair met the machine alike.
                print(BenchFigure("pingpong_vs_c_library", median("pingpong_vs_c_library"), "x"))
            }
            fflush(nil)
        }
    }

    /// `count` round trips of one `Double` with `peer`, the way the C and mpi4py peers make
    /// them (one buffer, sent and received into in turn): the time one way, in microseconds.
    private static func pingPong(_ world: Communicator, with peer: Int, count: Int) async throws -> Double {
        var value: [Double] = [1.5]
        let start = ContinuousClock.now
        if world.rank < peer {
            for _ in 0..<count {
                try await world.send(contentsOf: value, to: peer)
                try await world.recv(into: &value, from: peer)
            }
        } else {
            for _ in 0..<count {
                try await world.recv(into: &value, from: peer)
                try await world.send(contentsOf: value, to: peer)
            }
        }
        return start.duration(to: .now).inSeconds / Double(2 * count) * 1e6
    }

    /// Runs blocking `body` on a thread of its own.
    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}
