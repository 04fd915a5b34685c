import Distributed
import FleetActors
import FleetActorsTestSupport
import FleetWire
import Foundation
import Testing

@Suite("Remote calls between two actor systems on loopback")
struct RemoteCallTests {
    @Test(arguments: [FleetActorSystem.CallExecution.eventLoop, .globalConcurrent], [Duration.microseconds(100), .zero])
    func callsByName(execution: FleetActorSystem.CallExecution, busyPoll: Duration) async throws {
        try await Fixture.withPair(
            server: Fixture.configuration(callExecution: execution, busyPoll: busyPoll),
            client: Fixture.configuration(busyPoll: busyPoll)
        ) { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            #expect(try await calc.add(2, 3) == 5)
            try await calc.nothing()
            #expect(try await calc.sum([1.5, 2.5, 3]) == 7)
            let big = (0..<(1 << 17)).map(Double.init)
            #expect(try await calc.sum(big) == big.reduce(0, +))
        }
    }

    @Test func genericFunctionsWorkForConcreteTypes() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            #expect(try await calc.echo("hello") == "hello")
            #expect(try await calc.echo([1, 2, 3]) == [1, 2, 3])
            #expect(try await calc.echo(["a": 1.5]) == ["a": 1.5])
            let nested: [String: [Int]?] = ["x": nil, "y": [4]]
            #expect(try await calc.echo(nested) == nested)
        }
    }

    @Test(arguments: [FleetActorSystem.CallExecution.eventLoop, .globalConcurrent])
    func servedCallsCanUseTaskGroups(execution: FleetActorSystem.CallExecution) async throws {
        try await Fixture.withPair(server: Fixture.configuration(callExecution: execution)) { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for round in 0..<50 {
                    group.addTask { () async throws -> Void in
                        let values = Array(round..<(round + 16))
                        let squares = try await calc.squaresInTaskGroup(values)
                        #expect(squares == values.map { $0 * $0 })
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func concurrentCallsShareOneConnection() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            // A slow call does not hold up the quick ones behind it (no head-of-line blocking).
            async let slow: Void = calc.sleep(seconds: 2)
            let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for i in 0..<500 {
                    group.addTask { (i, try await calc.add(i, i)) }
                }
                var results: [Int: Int] = [:]
                for try await (i, sum) in group { results[i] = sum }
                return results
            }
            #expect(results.count == 500)
            #expect(results.allSatisfy { $0.value == 2 * $0.key })
            try await slow
        }
    }

    @Test func serverCallsBackIntoTheClient() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            let counter = Counter(actorSystem: client, value: 100)
            // The server receives a reference to the client's counter and calls it back.
            #expect(try await calc.bump(counter, times: 3) == 103)
            #expect(try await counter.current() == 103)
        }
    }

    @Test func actorReferencesCanBeReturned() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            let counter = try await calc.makeCounter(start: 41)
            #expect(__isRemoteActor(counter))
            #expect(try await counter.increment() == 42)
            // A reference to the server's own actor, passed back, resolves to that actor there.
            #expect(try await calc.bump(counter, times: 2) == 44)
        }
    }

    @Test func anActorIsKeptAliveWhileAPeerHoldsItAndReleasedAfter() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            server.publish(Keeper(actorSystem: server), as: "keeper")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            let keeper = try await client.resolve(Keeper.self, named: "keeper", at: endpoint)
            @Sendable func alive(_ id: FleetActorID, in system: FleetActorSystem) -> Bool {
                (try? Counter.resolve(id: id, using: system)) != nil
            }

            // Sent in a call that does not keep it: released once the call is over.
            var passing: Counter? = Counter(actorSystem: client)
            let passingID = passing!.id
            #expect(try await calc.bump(passing!, times: 1) == 1)
            passing = nil
            try await eventually { !alive(passingID, in: client) }

            // Sent twice and kept by the server: alive (and callable) until both copies go.
            var kept: Counter? = Counter(actorSystem: client, value: 10)
            let keptID = kept!.id
            try await keeper.hold(kept!)
            try await keeper.hold(kept!)
            kept = nil
            #expect(try await keeper.bumpAll() == 12)
            try await keeper.dropOne()
            #expect(try await keeper.bumpAll() == 13)
            #expect(alive(keptID, in: client))
            try await keeper.dropOne()
            try await eventually { !alive(keptID, in: client) }

            // Returned to the client: the server's actor lives while the client's proxy does.
            var returned: Counter? = try await calc.makeCounter(start: 1)
            // A copy of the ID holds the actor too; one that went through bytes holds nothing.
            let returnedID = try BinaryDecoder().decode(FleetActorID.self, from: BinaryEncoder().encode(returned!.id))
            #expect(try await returned!.increment() == 2)
            #expect(alive(returnedID, in: server))
            returned = nil
            try await eventually { !alive(returnedID, in: server) }
        }
    }

    @Test func codableErrorsArriveAsThemselves() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            await #expect(throws: InsufficientFunds(balance: 10, requested: 25)) {
                try await calc.withdraw(25)
            }
            do {
                try await calc.fail("disk on fire")
                Issue.record("no error")
            } catch let error as RemoteError {
                #expect(error.typeName.hasSuffix("Unserializable"))
                #expect(error.message == "unserializable: disk on fire")
            }
        }
    }

    @Test func undecodableArgumentsAreReportedAsSuch() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            #expect(try await calc.check(Positive(3)) == 3)
            do {
                _ = try await calc.check(Positive(-1))
                Issue.record("no error")
            } catch let error as RemoteCallError {
                guard case let .invalidArguments(detail) = error else { throw error }
                #expect(detail.contains("not positive"))
            }
            // The connection and the server carry on.
            #expect(try await calc.add(1, 1) == 2)
        }
    }

    @Test func unknownNamesAndDeadActorsAreTypedErrors() async throws {
        try await Fixture.withPair { server, client, endpoint in
            await #expect(throws: RemoteCallError.self) {
                _ = try await client.resolve(Calculator.self, named: "nobody", at: endpoint)
            }
            var counter: Counter? = Counter(actorSystem: server)
            server.publish(Calculator(actorSystem: server), as: "calc")
            server.publish(counter!, as: "counter")
            var remote: Counter? = try await client.resolve(Counter.self, named: "counter", at: endpoint)
            #expect(try await remote!.increment() == 1)
            let id = counter!.id
            server.unpublish("counter")
            counter = nil
            // The client's reference still holds it; the name is gone.
            #expect(try await remote!.increment() == 2)
            await #expect(throws: RemoteCallError.self) {
                _ = try await client.resolve(Counter.self, named: "counter", at: endpoint)
            }
            remote = nil   // The last reference: the actor deinitializes and resigns its ID.
            try await eventually { (try? Counter.resolve(id: id, using: server)) == nil }
        }
    }

    @Test func timeoutsFailTheCallAndCancelTheRemoteWork() async throws {
        let probe = Probe()
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server, probe: probe), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            do {
                try await RemoteCall.with(timeout: .milliseconds(200)) {
                    try await calc.sleep(seconds: 30)
                }
                Issue.record("no timeout")
            } catch let error as RemoteCallError {
                #expect(error == .timedOut(after: .milliseconds(200)))
            }
            try await eventually { probe.cancelled.withLock { $0 } == 1 }
            #expect(try await calc.add(1, 2) == 3)
        }
    }

    @Test func systemTimeoutApplies() async throws {
        try await Fixture.withPair(client: Fixture.configuration(callTimeout: .milliseconds(300))) { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            // Resolving is a call too: give it room on a loaded machine; the sleep below gets
            // the system's 300 ms.
            let calc = try await RemoteCall.with(timeout: .seconds(20)) {
                try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            }
            await #expect(throws: RemoteCallError.timedOut(after: .milliseconds(300))) {
                try await calc.sleep(seconds: 30)
            }
        }
    }

    @Test func cancellingTheCallerCancelsTheRemoteCall() async throws {
        let probe = Probe()
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server, probe: probe), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            let call = Task { try await calc.sleep(seconds: 30) }
            try await eventually { probe.started.withLock { $0 } == 1 }
            call.cancel()
            await #expect(throws: CancellationError.self) { try await call.value }
            try await eventually { probe.cancelled.withLock { $0 } == 1 }
        }
    }

    @Test func wrongSecretIsRejectedWithTheServersReason() async throws {
        let wrong = try Secret(Array("not the secret at all".utf8))
        try await Fixture.withPair(client: Fixture.configuration(secret: wrong)) { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            do {
                _ = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
                Issue.record("no rejection")
            } catch let error as HandshakeError {
                guard case let .rejected(reason) = error else { throw error }
                #expect(reason.contains("secret"))
            }
        }
    }

    @Test func lostConnectionFailsEveryCallInFlightThenReconnects() async throws {
        let client = FleetActorSystem(configuration: Fixture.configuration())
        defer { Task { await client.shutdown() } }
        var server = FleetActorSystem(configuration: Fixture.configuration())
        let endpoint = try await server.listen(on: Endpoint(host: "127.0.0.1", port: 0))
        server.publish(Calculator(actorSystem: server), as: "calc")
        let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
        let counter = try await calc.makeCounter(start: 0)
        let inFlight = (0..<5).map { _ in Task { try await calc.sleep(seconds: 30) } }
        try await Task.sleep(for: .milliseconds(200))
        await server.shutdown()
        for call in inFlight {
            do {
                try await call.value
                Issue.record("no error")
            } catch let error as RemoteCallError {
                guard case .connectionLost = error else { throw error }
            }
        }
        // A new server on the same port: the named reference reconnects on its next call.
        server = FleetActorSystem(configuration: Fixture.configuration())
        _ = try await server.listen(on: endpoint)
        server.publish(Calculator(actorSystem: server), as: "calc")
        #expect(try await calc.add(20, 22) == 42)
        // An actor known only by number went with the old server: a typed error, not a hang.
        do {
            _ = try await counter.increment()
            Issue.record("no error")
        } catch let error as RemoteCallError {
            guard case .actorNotFound = error else { throw error }
        }
        await server.shutdown()
    }

    @Test func callsAfterShutdownFail() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            await client.shutdown()
            await #expect(throws: RemoteCallError.systemShutDown) { try await calc.add(1, 1) }
        }
    }

    @Test func garbageOnTheSocketLeavesTheServerServing() async throws {
        try await Fixture.withPair { server, client, endpoint in
            server.publish(Calculator(actorSystem: server), as: "calc")
            for garbage in [Array("GET / HTTP/1.1\r\n\r\n".utf8), [UInt8](repeating: 0xFF, count: 64), [33, 0, 0, 0, 4, 1, 2, 3, 4]] {
                try sendRaw(garbage, to: endpoint)
            }
            let calc = try await client.resolve(Calculator.self, named: "calc", at: endpoint)
            #expect(try await calc.add(1, 2) == 3)
        }
    }
}

/// Polls `condition` every 10 ms for up to 5 s.
func eventually(_ condition: @Sendable () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    for _ in 0..<500 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met within 5 s", sourceLocation: sourceLocation)
}
