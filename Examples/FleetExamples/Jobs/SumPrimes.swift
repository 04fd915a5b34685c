import FleetJobs
import FleetWire
import Synchronization
import Foundation

/// The seed's Parallel Python example: `isprime`, `sum_primes`, and a job server summing the
/// primes below 100000, 100100, …, 100700 in parallel.
public enum SumPrimesProgram {
    /// The seed's inputs.
    public static let seedInputs = [100_000, 100_100, 100_200, 100_300, 100_400, 100_500, 100_600, 100_700]

    /// Runs the seed's program with `workers` threads (or worker processes), printing as the seed does, plus a
    /// progress line on a terminal while jobs run.
    ///
    /// - Returns: the sums, in the order of `inputs`.
    @discardableResult
    public static func run(
        workers: Int, isolation: JobIsolation = .threads, nodes: [Endpoint] = [], discovery: NodeDiscovery? = nil,
        credentials: Credentials? = nil, inputs: [Int] = seedInputs, progress: Bool = isatty(STDOUT_FILENO) == 1,
        output: @escaping @Sendable (String) -> Void = { print($0) }
    ) async throws -> [Int] {
        let server: JobServer
        if nodes.isEmpty, discovery == nil {
            server = try await JobServer(workers: workers, isolation: isolation)
        } else {
            let credentials = try credentials ?? Credentials.resolve(secretFile: nil, insecure: false)
            server = try await JobServer(
                workers: workers, isolation: isolation, nodes: nodes, discovery: discovery, credentials: credentials)
        }
        let kind = isolation == .processes ? "worker processes" : "workers"
        var starting = "Starting Fleet with \(server.workers) local \(kind)"
        if !nodes.isEmpty { starting += " and \(nodes.count) node\(nodes.count == 1 ? "" : "s")" }
        if let discovery { starting += ", discovering nodes on UDP port \(discovery.address.port)" }
        output(starting)
        let start = ContinuousClock.now
        let meter = progress ? ProgressLine(total: inputs.count) : nil
        let jobs = inputs.map { input in
            server.submit(SumPrimes.self, input, callback: { _ in meter?.step() })
        }
        var sums: [Int] = []
        do {
            for (input, job) in zip(inputs, jobs) {
                let sum = try await job.value
                meter?.clear()
                output("Sum of primes below \(input) is \(sum)")
                sums.append(sum)
            }
        } catch {
            await server.shutdown()
            throw error
        }
        meter?.clear()
        output(String(format: "Time elapsed: %.4f s", start.duration(to: .now).seconds))
        output(server.stats.table)
        await server.shutdown()
        return sums
    }
}

/// The seed's `isprime`: trial division up to ⌈√n⌉.
public func isPrime(_ n: Int) -> Bool {
    if n < 2 { return false }
    if n == 2 { return true }
    let limit = Int(Double(n).squareRoot().rounded(.up))
    var i = 2
    while i <= limit {
        if n % i == 0 { return false }
        i += 1
    }
    return true
}

/// The seed's `sum_primes`: the sum of all primes below `n`, as a job function.
public enum SumPrimes: JobFunction {
    public static func run(_ n: Int) -> Int {
        var sum = 0
        var x = 2
        while x < n {
            if isPrime(x) { sum += x }
            x += 1
        }
        return sum
    }
}

/// `3/8 jobs done`, rewritten in place on a terminal.
final class ProgressLine: Sendable {
    private let total: Int
    private let done = Mutex(0)

    init(total: Int) {
        self.total = total
    }

    func step() {
        let count = done.withLock { done in
            done += 1
            return done
        }
        FileHandle.standardOutput.write(Data("\r\(count)/\(total) jobs done".utf8))
    }

    func clear() {
        FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
    }
}

extension Duration {
    var seconds: Double { inSeconds }
}
