import ArgumentParser
import FleetMPI
import Foundation

/// The seed's pyMPI example: every rank estimates pi from random points in the unit square,
/// `allreduce` sums the estimates, rank 0 prints; rounds go on until two in a row differ by less
/// than 1e-5.
///
/// ```python
/// mypi = (inside * 1.0) / nsamples
/// pi = (4.0 / mpi.size) * mpi.allreduce(mypi, mpi.SUM)
/// ```
public enum ComputePi {
    /// The seed's samples per rank and round.
    public static let seedSamples = 10_000

    /// What a run found.
    public struct Result: Sendable {
        public var pi: Double
        public var rounds: Int
        public var elapsed: Duration
    }

    /// Runs the seed's `computePi(nsamples)` on `world`.
    ///
    /// - Parameters:
    ///   - every: rank 0 prints every `every`-th round's "pi: … - delta: …" line (the seed
    ///     prints every one: 1).
    ///   - maximumRounds: stop after this many rounds even if not converged (0: no limit).
    public static func run(
        on world: Communicator, samples: Int = seedSamples, every: Int = 1, maximumRounds: Int = 0
    ) async throws -> Result {
        var random = SplitMix64(seed: UInt64.random(in: .min ... .max) ^ UInt64(world.rank))
        var pi = 0.0
        var rounds = 0
        let start = ContinuousClock.now
        while true {
            var inside = 0
            for _ in 0..<samples {
                let x = random.nextUnit(), y = random.nextUnit()
                if x * x + y * y < 1 { inside += 1 }
            }
            let oldpi = pi
            let mypi = Double(inside) / Double(samples)
            pi = (4.0 / Double(world.size)) * (try await world.allreduce(mypi, .sum))
            rounds += 1
            let delta = abs(pi - oldpi)
            if world.rank == 0, every > 0, rounds % every == 0 { print("pi:", pi, " - delta:", delta) }
            if delta < 0.00001 || (maximumRounds > 0 && rounds >= maximumRounds) { break }
        }
        return Result(pi: pi, rounds: rounds, elapsed: start.duration(to: .now))
    }

    /// The whole program: `computePi(10000)`, then rank 0 prints the seed's last line.
    public static func main(samples: Int = seedSamples, every: Int = 1, timing: Bool = false) async throws {
        try await Communicator.withWorld { world in
            let result = try await run(on: world, samples: samples, every: every)
            if world.rank == 0 {
                print("Computed value of pi on", world.size, "processors is", result.pi)
                if timing {
                    let seconds = result.elapsed.inSeconds
                    print(String(format: "%d rounds of %d samples per rank in %.3f s: %.3f ms per round", result.rounds, samples, seconds, seconds * 1000 / Double(result.rounds)))
                }
            }
            fflush(nil)
        }
    }
}

/// The options of the seed's pi program, shared by `compute-pi` and `fleet example compute-pi`.
public struct ComputePiOptions: ParsableArguments {
    @Option(help: "Random points per rank per round (the seed's 10000).")
    public var nsamples: Int = ComputePi.seedSamples

    @Option(help: "Print every Nth round's line (the seed prints every round).")
    public var every: Int = 1

    @ArgumentParser.Flag(help: "Also print the rounds and the time per round.")
    public var timing = false

    public init() {}

    public func validate() throws {
        guard nsamples >= 1 else { throw ValidationError("--nsamples must be at least 1.") }
        guard every >= 0 else { throw ValidationError("--every must not be negative.") }
    }

    /// Runs the program with these options.
    public func run() async throws {
        try await ComputePi.main(samples: nsamples, every: every, timing: timing)
    }
}

/// A small, fast generator (SplitMix64): the samples need speed, not cryptographic quality.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1).
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}
