// FleetActors benchmarks: the distributed-actor call path, in one process, between two
// `FleetActorSystem`s connected over loopback TCP (insecure credentials, allowed on loopback).
//
//   cd Benchmarks && swift package benchmark --target FleetActorsBenchmarks
//
// The callee is `Primes` (FleetExamples), the actor behind `prime-service` and `fleet bench rpc`.
// Each benchmark sets the two systems up in its `setup` (listen, publish, resolve, warm up) and
// shuts both down in its `teardown`, so no connection outlives its benchmark.
//
// The malloc counters are process-wide: they count both sides of a call (client and server
// system, and the NIO event loops between them), as one process hosts both.

import Benchmark
import Distributed
import FleetActors
import FleetExamples
import FleetWire

// MARK: - Fixtures

/// Calls per iteration of the echo benchmarks (`scalingFactor: .kilo`: figures read per call).
let callsPerIteration = 1_000

/// The `sum` argument: 131,072 doubles, 1 MiB (1,048,576 bytes) of payload.
let sumArgument: [Double] = (0..<(1 << 17)).map { Double($0) * 0.5 + 0.25 }
let sumPayloadBytes = sumArgument.count * MemoryLayout<Double>.size

/// Custom metric for `rpc.sum.1MiB`: argument megabytes (10^6 bytes) per second.
let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)

/// Two actor systems on loopback: `server` listens and publishes a `Primes`, `client` has
/// resolved it as `primes`.
final class LoopbackPair: Sendable {
    let server: FleetActorSystem
    let client: FleetActorSystem
    let primes: Primes

    init() async throws {
        let configuration = FleetActorSystem.Configuration(credentials: .insecure)
        let server = FleetActorSystem(configuration: configuration)
        let client = FleetActorSystem(configuration: configuration)
        do {
            let endpoint = try await server.listen(on: Endpoint(host: "127.0.0.1", port: 0))
            server.publish(Primes(actorSystem: server), as: Primes.publishedName)
            primes = try await client.resolve(Primes.self, named: Primes.publishedName, at: endpoint)
            for i in 0..<1_000 {  // Warm-up: connection open, caches and allocator warm.
                guard try await primes.echo(i) == i else { throw RoundTripMismatch(call: "echo") }
            }
        } catch {
            await client.shutdown()
            await server.shutdown()
            throw error
        }
        self.server = server
        self.client = client
    }

    /// Shuts the client down, then the server.
    func close() async {
        await client.shutdown()
        await server.shutdown()
    }
}

/// A call returned something other than what it was given.
struct RoundTripMismatch: Error {
    var call: String
}

/// Holds a benchmark's pair between setup, iterations and teardown.
///
/// `@unchecked Sendable`: package-benchmark runs a benchmark's setup, its iterations and its
/// teardown one after another, never at once, so `pair` is never accessed concurrently.
final class PairBox: @unchecked Sendable {
    var pair: LoopbackPair?
}

/// Benchmark configurations (a type, so they are not main-actor globals of this top-level file).
enum Configurations {
    /// 1,000 calls per iteration (`scalingFactor: .kilo`): time, CPU and mallocs read per call,
    /// throughput as K calls/s. An iteration lasts 15–60 ms, so the 10 ms ticks of `cpuTotal`
    /// (process-wide: caller, callee and event loops) still resolve to ~10–20 µs per call.
    static var echo: Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .cpuTotal],
            warmupIterations: 1,
            scalingFactor: .kilo,
            maxDuration: .seconds(3),
            maxIterations: 1_000
        )
    }

    /// One call per iteration. No `cpuTotal`: Linux reports process CPU time in 10 ms ticks
    /// (`/proc/self/stat`), so for sub-millisecond iterations it reads 0 or 10,000 µs.
    static var single: Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            warmupIterations: 3,
            maxDuration: .seconds(3),
            maxIterations: 10_000
        )
    }

    /// One 1 MiB-argument call per iteration, with its payload rate (no `cpuTotal`, as above).
    static var bulk: Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident, megabytesPerSecond],
            warmupIterations: 3,
            maxDuration: .seconds(3),
            maxIterations: 2_000
        )
    }
}

/// A benchmark whose iterations call through a fresh loopback pair set up for it alone.
func rpcBenchmark(
    _ name: String,
    configuration: Benchmark.Configuration,
    _ body: @escaping @Sendable (Benchmark, LoopbackPair) async throws -> Void
) {
    let box = PairBox()
    Benchmark(
        name,
        configuration: configuration,
        closure: { benchmark in
            guard let pair = box.pair else {
                benchmark.error("loopback pair missing")
                return
            }
            do {
                try await body(benchmark, pair)
            } catch {
                benchmark.error("\(name) failed: \(error)")
            }
        },
        setup: {
            box.pair = try await LoopbackPair()
        },
        teardown: {
            await box.pair?.close()
            box.pair = nil
        }
    )
}

/// `scaledIterations` trivial calls, one after another.
@inline(__always)
func echoSequentially(_ primes: Primes, _ benchmark: Benchmark) async throws {
    for i in benchmark.scaledIterations {
        guard try await primes.echo(i) == i else { throw RoundTripMismatch(call: "echo") }
    }
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    // One trivial call at a time, from the benchmark's own task (global concurrent executor):
    // each call hops to the connection's event loop to be sent, and back when answered.
    rpcBenchmark("rpc.echo.roundTrip", configuration: Configurations.echo) { benchmark, pair in
        try await echoSequentially(pair.primes, benchmark)
    }

    // The same calls made on the connection's event loop (`withCallsOnConnection(to:)`): no
    // thread hop on the caller's side.
    rpcBenchmark("rpc.echo.roundTrip.onConnection", configuration: Configurations.echo) { benchmark, pair in
        try await pair.client.withCallsOnConnection(to: pair.primes) {
            try await echoSequentially(pair.primes, benchmark)
        }
    }

    // 1,000 calls started at once from a task group and all awaited: one iteration is 1,000
    // calls completed with up to 1,000 outstanding; `.kilo` makes the figures per call.
    rpcBenchmark("rpc.echo.pipelined1000", configuration: Configurations.echo) { benchmark, pair in
        let primes = pair.primes
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in benchmark.scaledIterations {
                group.addTask {
                    guard try await primes.echo(i) == i else { throw RoundTripMismatch(call: "echo") }
                }
            }
            try await group.waitForAll()
        }
    }

    // One `sum` call with a 131,072-element [Double] (1 MiB) argument; the reply is one Double.
    let expectedSum = sumArgument.reduce(0, +)
    rpcBenchmark("rpc.sum.1MiB", configuration: Configurations.bulk) { benchmark, pair in
        let clock = ContinuousClock()
        let start = clock.now
        let sum = try await pair.primes.sum(sumArgument)
        let elapsed = start.duration(to: clock.now)
        guard sum == expectedSum else { throw RoundTripMismatch(call: "sum") }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        benchmark.measurement(megabytesPerSecond, Int((Double(sumPayloadBytes) / 1e6 / seconds).rounded()))
    }

    // One `getNPrimes(500)` call: a small argument, a 500-element [Int] reply, and the server's
    // trial division (about as long as the round trip itself).
    let expectedPrimes = Primes.firstPrimes(500)
    rpcBenchmark("rpc.getNPrimes.500", configuration: Configurations.single) { benchmark, pair in
        guard try await pair.primes.getNPrimes(500) == expectedPrimes else {
            throw RoundTripMismatch(call: "getNPrimes")
        }
    }
}
