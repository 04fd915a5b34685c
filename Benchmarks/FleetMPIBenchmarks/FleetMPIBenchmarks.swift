// FleetMPI benchmarks: the software cost of a message and of a collective, apart from any
// transport — a world of one rank (a process started without a launcher), messages to itself.
// What a rank spends there (encoding, the header, matching in the mailbox, decoding) it spends
// on top of the wire on every transport, so this suite is where that cost is tracked.
//
//   cd Benchmarks && swift package benchmark --target FleetMPIBenchmarks
//
// Latencies between ranks (ping-pong, allreduce, barrier, 1M-double allreduce over TCP and
// shared memory) need ranks in processes of their own under a launcher: `fleet bench mpi
// --transport tcp|shm` measures them, and `Benchmarks/Peers/run --topics mpi` sets them beside
// mpi4py and the C library.

import Benchmark
import FleetMPI

/// A benchmark's check failed.
struct Mismatch: Error {
    var what: String
}

/// Runs `body` with this process's world (one rank), for `scaledIterations.count` operations
/// per iteration, on the rank's loop as in `Communicator.withWorld` (`name`), and from a task
/// of the global pool, each operation hopping to the loop and back (`name.offLoop`).
func worldBenchmark(
    _ name: String, scaling: BenchmarkScalingFactor = .kilo, metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal],
    _ body: @escaping @Sendable (Communicator, Int) async throws -> Void
) {
    for onLoop in [true, false] {
        let label = onLoop ? name : "\(name).offLoop"
        Benchmark(
            label,
            configuration: .init(metrics: metrics, warmupIterations: 2, scalingFactor: scaling, maxDuration: .seconds(3), maxIterations: 10_000)
        ) { benchmark in
            do {
                let world = try await Communicator.world()
                guard world.size == 1 else { throw Mismatch(what: "a world of \(world.size) ranks: run the suite without a launcher") }
                let count = benchmark.scaledIterations.count
                if onLoop {
                    try await world.withRankLoop { try await body(world, count) }
                } else {
                    try await body(world, count)
                }
            } catch {
                benchmark.error("\(label) failed: \(error)")
            }
        }
    }
}

/// A Codable message of a few fields, as programs send them.
struct Sample: Codable, Sendable, Equatable {
    var step: Int
    var estimate: Double
    var label: String
}

let benchmarks: @Sendable () -> Void = {
    // One Int sent to this rank and received: encode, header, mailbox, match, decode.
    worldBenchmark("mpi.self.sendrecv.Int") { world, count in
        for value in 0..<count {
            try await world.send(value, to: 0, tag: 1)
            guard try await world.recv(Int.self, from: 0, tag: 1) == value else { throw Mismatch(what: "Int") }
        }
    }

    // A small struct through the binary coder.
    worldBenchmark("mpi.self.sendrecv.struct") { world, count in
        for step in 0..<count {
            let sample = Sample(step: step, estimate: 3.14159, label: "rank 0")
            try await world.send(sample, to: 0, tag: 2)
            guard try await world.recv(Sample.self, from: 0, tag: 2) == sample else { throw Mismatch(what: "struct") }
        }
    }

    // Messages sent ahead, then received by tag in reverse order: matching against a backlog.
    worldBenchmark("mpi.self.match.reverse.64") { world, count in
        for _ in 0..<(count / 64) {
            for tag in 0..<64 { try await world.send(tag, to: 0, tag: tag) }
            for tag in (0..<64).reversed() {
                guard try await world.recv(Int.self, from: 0, tag: tag) == tag else { throw Mismatch(what: "tag \(tag)") }
            }
        }
    }

    // 1 MiB of Doubles as a raw buffer (no per-element coding), sent to this rank and received.
    let mebibyte = [Double](repeating: 1.5, count: 131_072)
    worldBenchmark("mpi.self.buffer.1MiB", scaling: .one, metrics: [.wallClock, .throughput]) { world, count in
        var received = [Double](repeating: 0, count: mebibyte.count)
        for _ in 0..<count {
            try await world.send(contentsOf: mebibyte, to: 0, tag: 3)
            try await world.recv(into: &received, from: 0, tag: 3)
        }
        guard received == mebibyte else { throw Mismatch(what: "buffer") }
    }

    // The fixed cost of a collective call on a world of one: allreduce of one Double.
    worldBenchmark("mpi.self.allreduce.Double") { world, count in
        var total = 0.0
        for value in 0..<count { total += try await world.allreduce(Double(value), .sum) }
        guard total == Double(count * (count - 1) / 2) else { throw Mismatch(what: "allreduce") }
    }
}
