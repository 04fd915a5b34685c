import Distributed
import FleetActors
import FleetActorsTestSupport
import FleetExamples
import FleetWire
import Foundation
import Testing

/// FleetActors between real processes on loopback: this test process is the client, the
/// `ActorTestPeer` and `prime-service` executables are the servers.
@Suite("Remote actors across processes", .serialized)
struct RemoteActorProcessTests {
    static let secret = "integration-secret-\(UInt64.random(in: 0 ... .max))"

    static func client(callTimeout: Duration = .seconds(20), heartbeat: Duration? = .seconds(5)) throws -> FleetActorSystem {
        var configuration = FleetActorSystem.Configuration(credentials: .secret(try Secret(Array(secret.utf8))))
        configuration.callTimeout = callTimeout
        configuration.heartbeatInterval = heartbeat
        configuration.wire.logger.logLevel = .critical
        return FleetActorSystem(configuration: configuration)
    }

    /// Runs `body` against a fresh `ActorTestPeer` process, stopped (by PID) afterwards.
    func withPeer(_ body: (FleetActorSystem, ServingProcess) async throws -> Void) async throws {
        try await withServingProcess("ActorTestPeer", [], environment: ["FLEET_SECRET": Self.secret]) { peer in
            let client = try Self.client()
            do {
                try await body(client, peer)
            } catch {
                await client.shutdown()
                throw error
            }
            await client.shutdown()
        }
    }

    @Test func syncAndConcurrentCalls() async throws {
        try await withPeer { client, peer in
            let calc = try await client.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            #expect(try await calc.add(40, 2) == 42)
            #expect(try await calc.echo(["x": [1.5, 2.5]]) == ["x": [1.5, 2.5]])
            let sums = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<200 { group.addTask { try await calc.add(i, 1) } }
                return try await group.reduce(0, +)
            }
            #expect(sums == (0..<200).reduce(0, +) + 200)
        }
    }

    @Test func callbacksAndActorReferences() async throws {
        try await withPeer { client, peer in
            let calc = try await client.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            // The peer process calls back into this one.
            let local = Counter(actorSystem: client, value: 7)
            #expect(try await calc.bump(local, times: 3) == 10)
            #expect(try await local.current() == 10)
            // An actor made in the peer process, returned by reference.
            let remote = try await calc.makeCounter(start: 99)
            #expect(try await remote.increment() == 100)
            #expect(try await calc.bump(remote, times: 1) == 101)
        }
    }

    @Test func thrownErrorsOfBothKinds() async throws {
        try await withPeer { client, peer in
            let calc = try await client.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            await #expect(throws: InsufficientFunds(balance: 10, requested: 500)) { try await calc.withdraw(500) }
            do {
                try await calc.fail("out of coffee")
                Issue.record("no error")
            } catch let error as RemoteError {
                #expect(error.message == "unserializable: out of coffee")
            }
            do {
                _ = try await calc.check(Positive(-5))
                Issue.record("no error")
            } catch let error as RemoteCallError {
                guard case .invalidArguments = error else { throw error }
            }
        }
    }

    @Test func timeoutAndCancellationReachTheServer() async throws {
        try await withPeer { client, peer in
            let calc = try await client.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            await #expect(throws: RemoteCallError.timedOut(after: .milliseconds(300))) {
                try await RemoteCall.with(timeout: .milliseconds(300)) { try await calc.sleep(seconds: 60) }
            }
            let call = Task { try await calc.sleep(seconds: 60) }
            try await Task.sleep(for: .milliseconds(300))
            call.cancel()
            await #expect(throws: CancellationError.self) { try await call.value }
            // Both sleeps were cancelled on the server.
            var sleeps: [Int] = []
            for _ in 0..<100 {
                sleeps = try await calc.sleeps()
                if sleeps == [2, 2] { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(sleeps == [2, 2])
        }
    }

    @Test func serverKilledMidCallFailsTheCallsPromptly() async throws {
        try await withPeer { client, peer in
            let calc = try await client.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            let calls = (0..<3).map { _ in Task { try await calc.sleep(seconds: 60) } }
            try await Task.sleep(for: .milliseconds(300))
            let killedAt = ContinuousClock.now
            peer.signal(SIGKILL)
            for call in calls {
                do {
                    try await call.value
                    Issue.record("no error")
                } catch let error as RemoteCallError {
                    guard case .connectionLost = error else { throw error }
                }
            }
            #expect(killedAt.duration(to: .now) < .seconds(10), "the calls outlived the server by too long")
            // The endpoint is gone: the next call fails with a connection error, not a hang.
            await #expect(throws: (any Error).self) { try await calc.add(1, 1) }
        }
    }

    @Test func silentServerIsDetectedByTheHeartbeat() async throws {
        try await withPeer { _, peer in
            // Calls may take a minute, but a peer that stops answering pings is given up on after
            // three heartbeat intervals: the cut-off case, where no FIN or RST ever arrives.
            let client = try Self.client(callTimeout: .seconds(60), heartbeat: .milliseconds(200))
            let calc = try await client.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            #expect(try await calc.add(1, 1) == 2)
            let call = Task { try await calc.sleep(seconds: 50) }
            try await Task.sleep(for: .milliseconds(200))
            let stoppedAt = ContinuousClock.now
            peer.signal(SIGSTOP)
            do {
                try await call.value
                Issue.record("no error")
            } catch let error as RemoteCallError {
                guard case let .connectionLost(reason) = error else { throw error }
                #expect(reason.contains("no word from the peer"))
            }
            #expect(stoppedAt.duration(to: .now) < .seconds(20))
            await client.shutdown()
        }
    }

    @Test func garbageBytesLeaveTheServerServingOthers() async throws {
        try await withPeer { client, peer in
            let calc = try await client.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            for garbage: [UInt8] in [Array("hello?\r\n".utf8), [UInt8](repeating: 0xAB, count: 4096), [1, 0xFF, 0xFF, 0xFF, 0xFF]] {
                try sendRaw(garbage, to: peer.endpoint)
            }
            #expect(try await calc.add(2, 2) == 4)
            let other = try Self.client()
            let again = try await other.resolve(Calculator.self, named: "calc", at: peer.endpoint)
            #expect(try await again.add(3, 3) == 6)
            await other.shutdown()
        }
    }

    @Test func wrongSecretIsRejected() async throws {
        try await withPeer { _, peer in
            var configuration = FleetActorSystem.Configuration(credentials: .secret(try Secret(Array("wrong-secret".utf8))))
            configuration.wire.logger.logLevel = .critical
            let intruder = FleetActorSystem(configuration: configuration)
            do {
                _ = try await intruder.resolve(Calculator.self, named: "calc", at: peer.endpoint)
                Issue.record("not rejected")
            } catch let error as HandshakeError {
                guard case .rejected = error else { throw error }
            }
            await intruder.shutdown()
        }
    }

    @Test func differentBuildIsAnUnknownTarget() async throws {
        try await withPeer { client, peer in
            // This process's own `Calculator` stands for another build of the peer's: same name
            // published, different module, so different distributed functions.
            let other = try await client.resolve(OtherCalculator.self, named: "calc", at: peer.endpoint)
            do {
                _ = try await other.add(1, 2)
                Issue.record("no error")
            } catch let error as RemoteCallError {
                guard case .targetNotFound = error else { throw error }
            }
        }
    }

    // MARK: prime-service

    @Test func primeServiceAnswersLikeTheSeed() async throws {
        try await withServingProcess("prime-service", ["serve", "--port", "0"], environment: ["FLEET_SECRET": Self.secret]) { server in
            let address = server.endpoint.description
            let call = try await run("prime-service", ["call", "--to", address, "500"], environment: ["FLEET_SECRET": Self.secret])
            #expect(call.status == 0, "\(call.stderr)")
            #expect(call.stdout.contains("[3433, 3449, 3457, 3461, 3463, 3467, 3469, 3491, 3499, 3511, 3517, 3527, 3529, 3533, 3539, 3541, 3547, 3557, 3559, 3571]"))

            let concurrent = try await run("prime-service", ["call", "--async", "--to", address, "--to", address, "100"],
                                           environment: ["FLEET_SECRET": Self.secret])
            #expect(concurrent.status == 0, "\(concurrent.stderr)")
            #expect(concurrent.stdout.contains("2 servers at once"))
            #expect(concurrent.stdout.components(separatedBy: "[419, 421, 431").count == 3)

            let wrong = try await run("prime-service", ["call", "--to", address, "500"], environment: ["FLEET_SECRET": "not-the-secret"])
            #expect(wrong.status != 0)
            #expect(wrong.stderr.contains("secret"))

            // The same service from this process, and again after a killed client.
            let client = try Self.client()
            let primes = try await client.resolve(Primes.self, named: Primes.publishedName, at: server.endpoint)
            #expect(try await primes.getNPrimes(10) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29])
            await client.shutdown()
        }
    }
}

/// The peer's `Calculator` as another build would declare it: same names, another module.
distributed actor OtherCalculator {
    typealias ActorSystem = FleetActorSystem
    distributed func add(_ a: Int, _ b: Int) -> Int { a + b }
}
