import FleetJobs
import FleetWire
import Foundation

/// `fleet bench jobs`: the job server's throughput and scaling with thread workers.
///
/// Figures: `jobs_trivial_threads` and `jobs_trivial_processes` (jobs/s: trivial jobs through 2
/// thread workers / 2 worker processes, all submitted and then awaited, the way pp's benchmark
/// peer does), and `sum_primes_1_worker`,
/// `sum_primes_2_workers` (s: the seed's 8 jobs) with `sum_primes_speedup_2_workers` (x).
/// `jobs_trivial_node` (jobs/s) goes through one `fleet serve` node started on loopback when
/// `fleet` is given. Worker processes are copies of the running executable, which must call
/// `JobServer.runWorkerIfRequested()` first (`fleet` does).
public enum JobsBench {
    /// Trivial jobs: returns its argument.
    enum Identity: JobFunction {
        static func run(_ n: Int) -> Int { n }
    }

    /// Runs every measurement, handing each figure to `report` as soon as it is measured.
    public static func run(quick: Bool = false, fleet: String? = nil, report: (BenchFigure) -> Void) async throws {
        let count = quick ? 20_000 : 200_000
        var rates: [Double] = []
        for _ in 0..<(quick ? 1 : 5) {
            rates.append(try await trivialJobsPerSecond(count: count, workers: 2))
        }
        report(BenchFigure("jobs_trivial_threads", rates.sorted()[rates.count / 2], "jobs/s"))
        report(BenchFigure("jobs_trivial_processes", try await trivialJobsPerSecond(
            count: quick ? 5_000 : 50_000, workers: 2, isolation: .processes), "jobs/s"))

        if let fleet {
            let node = try await NodeProcess.start(fleet: fleet, workers: 2)
            do {
                let credentials = Credentials.secret(try Secret(Array(node.secret.utf8)))
                let server = try await JobServer(workers: 0, nodes: [node.endpoint], credentials: credentials)
                _ = try await server.submit(Identity.self, -1).value   // Executable shipped, workers up.
                let count = quick ? 2_000 : 20_000
                let start = ContinuousClock.now
                let jobs = (0..<count).map { server.submit(Identity.self, $0) }
                for (n, job) in jobs.enumerated() {
                    guard try await job.value == n else { throw BenchError.roundTripMismatch("job result") }
                }
                report(BenchFigure("jobs_trivial_node", Double(count) / start.duration(to: .now).inSeconds, "jobs/s"))
                await server.shutdown()
            } catch {
                await node.stop()
                throw error
            }
            await node.stop()
        }

        let rounds = quick ? 1 : 5
        var one: [Double] = [], two: [Double] = []
        for _ in 0..<rounds {
            one.append(try await sumPrimesSeconds(workers: 1))
            two.append(try await sumPrimesSeconds(workers: 2))
        }
        let best1 = one.min()!, best2 = two.min()!
        report(BenchFigure("sum_primes_1_worker", best1, "s"))
        report(BenchFigure("sum_primes_2_workers", best2, "s"))
        report(BenchFigure("sum_primes_speedup_2_workers", best1 / best2, "x"))
    }

    static func trivialJobsPerSecond(count: Int, workers: Int, isolation: JobIsolation = .threads) async throws -> Double {
        let server = try await JobServer(workers: workers, isolation: isolation)
        _ = try await server.submit(Identity.self, -1).value   // Workers up and attached.
        let start = ContinuousClock.now
        let jobs = (0..<count).map { server.submit(Identity.self, $0) }
        for (n, job) in jobs.enumerated() {
            guard try await job.value == n else { throw BenchError.roundTripMismatch("job result") }
        }
        let rate = Double(count) / start.duration(to: .now).inSeconds
        await server.shutdown()
        return rate
    }

    /// The seed's 8 jobs on a started server, timed from the first submit to the last result
    /// (as the pp peer times them).
    static func sumPrimesSeconds(workers: Int) async throws -> Double {
        let server = JobServer(workers: workers)
        _ = try await server.submit(SumPrimes.self, 10).value   // Threads up.
        let start = ContinuousClock.now
        let jobs = SumPrimesProgram.seedInputs.map { server.submit(SumPrimes.self, $0) }
        var sums: [Int] = []
        for job in jobs { sums.append(try await job.value) }
        let seconds = start.duration(to: .now).inSeconds
        await server.shutdown()
        guard sums.first == 454_396_537 else { throw BenchError.roundTripMismatch("sum_primes") }
        return seconds
    }
}
