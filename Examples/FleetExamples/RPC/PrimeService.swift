import FleetActors
import FleetWire
import Foundation

/// The seed's RPyC example as a library: a server that hosts ``Primes``, and a client that asks
/// one or several servers for the first N primes, one after another or all at once.
public enum PrimeService {
    /// Serves a ``Primes`` actor on `endpoint` until `stop` returns, then shuts down.
    ///
    /// - Parameter ready: called with the bound endpoint (the real port when 0 was asked for).
    public static func serve(
        on endpoint: Endpoint,
        configuration: FleetActorSystem.Configuration,
        ready: (Endpoint) -> Void,
        until stop: () async -> Void
    ) async throws {
        let system = FleetActorSystem(configuration: configuration)
        do {
            let bound = try await system.listen(on: endpoint)
            system.publish(Primes(actorSystem: system), as: Primes.publishedName)
            ready(bound)
            await stop()
            await system.shutdown()
        } catch {
            await system.shutdown()
            throw error
        }
    }

    /// One server's answer.
    public struct Answer: Sendable {
        /// The server asked.
        public var server: Endpoint
        /// The first N primes it computed.
        public var primes: [Int]
        /// From sending the call to having the result, connecting included.
        public var elapsed: Duration
    }

    /// Asks each of `servers` for the first `n` primes: one after another, or all at once when
    /// `concurrently` (the seed's asynchronous use: the client is free to ask other servers
    /// while one computes). Answers come back in the order of `servers`.
    public static func call(
        _ servers: [Endpoint], n: Int, concurrently: Bool, system: FleetActorSystem
    ) async throws -> [Answer] {
        @Sendable func ask(_ server: Endpoint) async throws -> Answer {
            let start = ContinuousClock.now
            let primes = try await system.resolve(Primes.self, named: Primes.publishedName, at: server)
            let values = try await primes.getNPrimes(n)
            return Answer(server: server, primes: values, elapsed: start.duration(to: .now))
        }
        guard concurrently else {
            var answers: [Answer] = []
            for server in servers { answers.append(try await ask(server)) }
            return answers
        }
        return try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
            for (index, server) in servers.enumerated() {
                group.addTask { (index, try await ask(server)) }
            }
            var answers: [(Int, Answer)] = []
            for try await answer in group { answers.append(answer) }
            return answers.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// `12.3 ms`.
    public static func milliseconds(_ duration: Duration) -> String {
        String(format: "%.1f ms", duration.inMilliseconds)
    }

    /// The seed's printout of a result: `primes[-20:]`, as `[3433, 3449, ..., 3571]`.
    public static func lastTwenty(_ primes: [Int]) -> String {
        "[" + primes.suffix(20).map(String.init).joined(separator: ", ") + "]"
    }
}
