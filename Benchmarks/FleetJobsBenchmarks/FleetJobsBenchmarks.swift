// FleetJobs benchmarks: the job server with thread workers — trivial jobs through the queue, and
// the seed's 8 sum_primes jobs on 1 and 2 workers.
//
//   cd Benchmarks && swift package benchmark --target FleetJobsBenchmarks
//
// Worker processes are measured by `fleet bench jobs` instead: they are copies of the running
// executable, which must call `JobServer.runWorkerIfRequested()` before anything else, and a
// benchmark executable's entry point belongs to package-benchmark.

import Benchmark
import FleetExamples
import FleetJobs

/// Trivial jobs per iteration (`scalingFactor: .kilo`: figures read per job).
let jobsPerIteration = 1_000

/// A trivial job: returns its argument.
enum Identity: JobFunction {
    static func run(_ n: Int) -> Int { n }
}

/// A job returned something other than expected.
struct WrongResult: Error {
    var job: String
}

/// Holds a benchmark's server between setup, iterations and teardown.
///
/// `@unchecked Sendable`: package-benchmark runs a benchmark's setup, its iterations and its
/// teardown one after another, never at once, so `server` is never accessed concurrently.
final class ServerBox: @unchecked Sendable {
    var server: JobServer?
}

enum Configurations {
    /// 1,000 trivial jobs per iteration, submitted at once and all awaited.
    static var trivial: Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            warmupIterations: 2, scalingFactor: .kilo, maxDuration: .seconds(3), maxIterations: 1_000)
    }

    /// The seed's 8 jobs per iteration.
    static var seed: Benchmark.Configuration {
        .init(metrics: [.wallClock, .throughput], warmupIterations: 1, maxDuration: .seconds(3), maxIterations: 100)
    }
}

/// A benchmark with its own server of `workers` threads, created in setup, shut down in teardown.
func jobBenchmark(
    _ name: String, workers: Int, configuration: Benchmark.Configuration,
    _ body: @escaping @Sendable (Benchmark, JobServer) async throws -> Void
) {
    let box = ServerBox()
    Benchmark(
        name, configuration: configuration,
        closure: { benchmark in
            guard let server = box.server else { return benchmark.error("server missing") }
            do {
                try await body(benchmark, server)
            } catch {
                benchmark.error("\(name) failed: \(error)")
            }
        },
        setup: { box.server = JobServer(workers: workers) },
        teardown: {
            await box.server?.shutdown()
            box.server = nil
        }
    )
}

let benchmarks: @Sendable () -> Void = {
    jobBenchmark("jobs.trivial.threads2", workers: 2, configuration: Configurations.trivial) { benchmark, server in
        let jobs = benchmark.scaledIterations.map { server.submit(Identity.self, $0) }
        for (n, job) in zip(benchmark.scaledIterations, jobs) {
            guard try await job.value == n else { throw WrongResult(job: "identity") }
        }
    }

    for workers in [1, 2] {
        jobBenchmark("jobs.sumPrimes.seed.\(workers)worker\(workers == 1 ? "" : "s")", workers: workers, configuration: Configurations.seed) { _, server in
            let jobs = SumPrimesProgram.seedInputs.map { server.submit(SumPrimes.self, $0) }
            guard try await jobs[0].value == 454_396_537 else { throw WrongResult(job: "sum_primes") }
            for job in jobs.dropFirst() { _ = try await job.value }
        }
    }
}
