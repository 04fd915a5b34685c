import FleetActors
import FleetActorsTestSupport
import FleetWire
import Testing

enum Fixture {
    static let secret = try! Secret(Array("correct horse battery staple".utf8))

    static func configuration(
        secret: Secret = Fixture.secret, callTimeout: Duration = .seconds(10),
        callExecution: FleetActorSystem.CallExecution = .eventLoop, busyPoll: Duration = .microseconds(100)
    ) -> FleetActorSystem.Configuration {
        var configuration = FleetActorSystem.Configuration(credentials: .secret(secret))
        configuration.wire.busyPoll = busyPoll
        configuration.callTimeout = callTimeout
        configuration.callExecution = callExecution
        return configuration
    }

    /// A serving system on a free loopback port and a client system; both shut down after `body`.
    static func withPair<Result>(
        server serverConfiguration: FleetActorSystem.Configuration = Fixture.configuration(),
        client clientConfiguration: FleetActorSystem.Configuration = Fixture.configuration(),
        _ body: (_ server: FleetActorSystem, _ client: FleetActorSystem, _ endpoint: Endpoint) async throws -> Result
    ) async throws -> Result {
        let server = FleetActorSystem(configuration: serverConfiguration)
        let client = FleetActorSystem(configuration: clientConfiguration)
        do {
            let endpoint = try await server.listen(on: Endpoint(host: "127.0.0.1", port: 0))
            let result = try await body(server, client, endpoint)
            await client.shutdown()
            await server.shutdown()
            return result
        } catch {
            await client.shutdown()
            await server.shutdown()
            throw error
        }
    }
}
