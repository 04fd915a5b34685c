/// A function a ``JobServer`` can run as a job: Parallel Python's `func` with its `depfuncs`,
/// made a type so that it has an identity every worker of the same program knows.
///
/// The seed's `sum_primes`:
///
/// ```swift
/// enum SumPrimes: JobFunction {
///     static func run(_ n: Int) -> Int {
///         (2..<max(n, 2)).filter(isPrime).reduce(0, +)
///     }
/// }
///
/// let job = server.submit(SumPrimes.self, 100_000)
/// print(try await job.value)   // 454396537
/// ```
///
/// Arguments and results are `Codable`, so that the same job can later run in a worker process
/// or on a remote node running the same executable; a thread worker calls ``run(_:)`` directly.
public protocol JobFunction: Sendable {
    /// The job's argument (a tuple of several values becomes a struct).
    associatedtype Input: Codable & Sendable
    /// The job's result.
    associatedtype Output: Codable & Sendable

    /// Computes the result. Runs on a worker thread: blocking and long computations are fine.
    static func run(_ input: Input) throws -> Output
}
