import Distributed
import FleetActors

/// The seed's `primestuff` module as a distributed actor: what RPyC's
/// `c.modules.primestuff.get_n_primes(500)` calls, hosted by `prime-service serve`.
///
/// ```swift
/// let primes = try await system.resolve(Primes.self, named: Primes.publishedName, at: server)
/// print(try await primes.getNPrimes(500).suffix(20))
/// ```
public distributed actor Primes {
    public typealias ActorSystem = FleetActorSystem

    /// The name `prime-service serve` publishes its actor under.
    public static let publishedName = "primes"

    /// Creates the actor in `actorSystem`.
    public init(actorSystem: FleetActorSystem) {
        self.actorSystem = actorSystem
    }

    /// The first `n` prime numbers, by trial division against the primes found so far (the
    /// seed's deliberately plain algorithm).
    public distributed func getNPrimes(_ n: Int) -> [Int] {
        Self.firstPrimes(n)
    }

    /// Returns its argument: the trivial call of the round-trip benchmarks.
    public distributed func echo(_ value: Int) -> Int { value }

    /// The sum of `values`: the bulk-argument call of the throughput benchmark.
    public distributed func sum(_ values: [Double]) -> Double {
        var total = 0.0
        for value in values { total += value }
        return total
    }

    /// The first `n` primes, computed locally.
    ///
    /// - Complexity: O(n × π(p)) divisions, p the n-th prime.
    public static func firstPrimes(_ n: Int) -> [Int] {
        var primes: [Int] = []
        primes.reserveCapacity(max(n, 0))
        var candidate = 2
        while primes.count < n {
            if primes.allSatisfy({ candidate % $0 != 0 }) { primes.append(candidate) }
            candidate += 1
        }
        return primes
    }
}
