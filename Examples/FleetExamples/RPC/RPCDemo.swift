import FleetActors
import FleetWire
import Foundation

/// `fleet demo rpc`: the seed's RPyC example, server and client on loopback.
///
/// A server system publishes a ``Primes`` actor on a free loopback port, under a fresh random
/// secret; a client system connects, proves the secret, and calls `getNPrimes(500)`
/// synchronously, then on several connections at once, then shows a client with the wrong
/// secret being turned away. Every step prints its time.
public enum RPCDemo {
    /// Runs the demo, printing as it goes.
    public static func run(count: Int = 500, concurrentCalls: Int = 4, output: (String) -> Void = { print($0) }) async throws {
        let secret = try Secret((0..<32).map { _ in UInt8.random(in: .min ... .max) })
        var configuration = FleetActorSystem.Configuration(credentials: .secret(secret))
        configuration.wire.logger.logLevel = .error   // The refused client below is expected.
        let server = FleetActorSystem(configuration: configuration)
        let client = FleetActorSystem(configuration: configuration)
        do {
            let endpoint = try await server.listen(on: Endpoint(host: "127.0.0.1", port: 0))
            server.publish(Primes(actorSystem: server), as: Primes.publishedName)
            output("server: Primes published as '\(Primes.publishedName)' on \(endpoint)")

            var start = ContinuousClock.now
            let primes = try await client.resolve(Primes.self, named: Primes.publishedName, at: endpoint)
            output("client: connected, authenticated and resolved in \(PrimeService.milliseconds(start.duration(to: .now)))")

            start = .now
            let values = try await primes.getNPrimes(count)
            output("primes = c.getNPrimes(\(count))  # synchronous: the client waits (\(PrimeService.milliseconds(start.duration(to: .now))))")
            output(PrimeService.lastTwenty(values))

            start = .now
            let local = Primes.firstPrimes(count)
            output("the same computed locally: \(PrimeService.milliseconds(start.duration(to: .now))); equal: \(local == values)")

            // The seed's asynchronous use: several calls in flight at once, the client free meanwhile.
            start = .now
            let answers = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<concurrentCalls {
                    group.addTask { try await primes.getNPrimes(count) }
                }
                var answers: [[Int]] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            output("\(concurrentCalls) calls at once: \(PrimeService.milliseconds(start.duration(to: .now))), all equal: \(answers.allSatisfy { $0 == values })")

            start = .now
            let calls = 2_000
            for i in 0..<calls { _ = try await primes.echo(i) }
            let perCall = start.duration(to: .now) / calls
            output("a trivial call's round trip: \(String(format: "%.1f", perCall.inMilliseconds * 1000)) µs (\(calls) calls)")

            var wrong = configuration
            wrong.wire.credentials = .secret(try Secret(Array("not-the-secret".utf8)))
            let intruder = FleetActorSystem(configuration: wrong)
            do {
                _ = try await intruder.resolve(Primes.self, named: Primes.publishedName, at: endpoint)
                output("a client with the wrong secret: NOT rejected (this is a bug)")
            } catch {
                output("a client with the wrong secret: \(error)")
            }
            await intruder.shutdown()
            await client.shutdown()
            await server.shutdown()
        } catch {
            await client.shutdown()
            await server.shutdown()
            throw error
        }
    }
}
