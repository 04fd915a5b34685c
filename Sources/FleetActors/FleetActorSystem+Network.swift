import Distributed
import FleetWire
import NIOCore
import NIOSSL

extension FleetActorSystem {
    /// The connections and listeners of a system.
    struct Network {
        var byNode: [NodeID: ActorConnection] = [:]
        var byEndpoint: [Endpoint: ActorConnection] = [:]
        var dialling: [Endpoint: EventLoopFuture<ActorConnection>] = [:]
        var all: [ObjectIdentifier: ActorConnection] = [:]
        var listeners: [any Channel] = []
        var isShutDown = false
    }

    // MARK: Serving

    /// Starts accepting connections on `endpoint`; other nodes can then resolve the actors this
    /// system publishes. Call it more than once to listen on several addresses.
    ///
    /// - Returns: the endpoint bound, with the real port when `endpoint.port` was 0.
    /// - Throws: `SecretError.insecureRequiresLoopback(host:)` for insecure credentials on an
    ///   address other than loopback; TLS and socket errors; ``RemoteCallError/systemShutDown``.
    @discardableResult
    public func listen(on endpoint: Endpoint) async throws -> Endpoint {
        let tlsContext = try configuration.wire.serverTLSContext(binding: endpoint)
        let channel = try await WireBootstrap.server(group: configuration.eventLoopGroup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    _ = try self.setUpConnection(channel, role: .server, tlsContext: tlsContext, dialled: nil)
                }
            }
            .bind(host: endpoint.bindHost, port: endpoint.port).get()
        let accepted = network.withLock { network in
            guard !network.isShutDown else { return false }
            network.listeners.append(channel)
            return true
        }
        guard accepted else {
            try? await channel.close()
            throw RemoteCallError.systemShutDown
        }
        let address = channel.localAddress
        return Endpoint(host: address?.ipAddress ?? endpoint.host, port: address?.port ?? endpoint.port)
    }

    /// Waits until ``shutdown()`` has finished.
    public func waitUntilShutdown() async {
        try? await shutdownPromise.futureResult.get()
    }

    /// Stops listening, closes every connection (calls in flight on them fail with
    /// ``RemoteCallError/systemShutDown``) and refuses new calls. Idempotent.
    public func shutdown() async {
        let first = network.withLock { network in
            defer { network.isShutDown = true }
            return !network.isShutDown
        }
        guard first else { return await waitUntilShutdown() }
        let (listeners, connections) = network.withLock { network in
            defer {
                network.listeners = []
                network.byNode = [:]
                network.byEndpoint = [:]
            }
            return (network.listeners, Array(network.all.values))
        }
        for listener in listeners {
            try? await listener.close()
        }
        for connection in connections {
            connection.close(failingCallsWith: RemoteCallError.systemShutDown)
        }
        for connection in connections {
            try? await connection.channel.closeFuture.get()
        }
        shutdownPromise.succeed()
    }

    // MARK: Resolving by name

    /// Resolves the actor published as `name` on the node listening at `endpoint`, connecting
    /// to it if need be. Calls on the result reconnect after a lost connection.
    ///
    /// - Throws: ``RemoteCallError/actorNotFound(_:)`` when nothing is published under the
    ///   name there; `HandshakeError` when the node refuses this side (its reason included);
    ///   connection errors.
    public func resolve<Act: DistributedActor>(
        _ type: Act.Type = Act.self, named name: String, at endpoint: Endpoint
    ) async throws -> Act where Act.ActorSystem == FleetActorSystem {
        let connection = try await connect(to: endpoint)
        guard let peer = connection.peer else { throw RemoteCallError.connectionLost(reason: "no introduction") }
        let byName = FleetActorID(node: peer, number: 0, name: name, endpoint: endpoint)
        // A probe: the node answers with the actor's own ID, or that there is none.
        var probe = FleetInvocationEncoder()
        try probe.doneRecording()
        let (body, decoder) = try await call(byName, target: "", invocation: &probe)
        let found = try decoder.decode(FleetActorID.self, from: body)
        var id = FleetActorID(node: found.node, number: found.number, name: name, endpoint: endpoint)
        id.holding = found.holding
        return try Act.resolve(id: id, using: self)
    }

    /// The actor published as `name` in this system.
    ///
    /// - Throws: ``RemoteCallError/actorNotFound(_:)`` when none of type `Act` is.
    public func resolve<Act: DistributedActor>(
        _ type: Act.Type = Act.self, named name: String
    ) throws -> Act where Act.ActorSystem == FleetActorSystem {
        let id = FleetActorID(node: node, number: 0, name: name)
        guard let actor = localActor(for: id) as? Act else { throw RemoteCallError.actorNotFound(id) }
        return actor
    }

    // MARK: Calling with the lowest latency

    /// Runs `body` on the event loop of this system's connection to the node hosting `actor`
    /// (connecting first if need be): calls to that node made in `body` — and in the child tasks
    /// it starts — are written and resumed on that loop, with no thread hop on the way.
    ///
    /// A call made from Swift's global concurrent executor hops to the connection's event loop
    /// to be sent, and back when the reply arrives; on a machine where waking a thread takes
    /// tens of microseconds, that doubles a round trip on loopback. Run latency-critical loops of
    /// calls here; keep blocking and long computations out of `body`, as they would hold up
    /// the loop's other connections.
    ///
    /// ```swift
    /// let total = try await system.withCallsOnConnection(to: primes) {
    ///     var total = 0
    ///     for i in 0..<10_000 { total += try await primes.echo(i) }
    ///     return total
    /// }
    /// ```
    public func withCallsOnConnection<Act: DistributedActor, Result>(
        to actor: Act, _ body: () async throws -> Result
    ) async throws -> Result where Act.ID == FleetActorID {
        let connection = try await connection(for: actor.id)
        return try await withTaskExecutorPreference(connection.executor) { try await body() }
    }

    // MARK: Connections

    /// The connection to the node hosting `id`: an open one, or a new one to the endpoint the
    /// ID carries.
    func connection(for id: FleetActorID) async throws -> ActorConnection {
        if let open = try openConnection(for: id) { return open }
        guard let endpoint = id.endpoint else { throw RemoteCallError.unreachable(id) }
        return try await connect(to: endpoint)
    }

    /// The open connection to the node hosting `id`, if there is one; does not dial.
    ///
    /// - Throws: ``RemoteCallError/systemShutDown`` once the system is shut down.
    func openConnection(for id: FleetActorID) throws -> ActorConnection? {
        try network.withLock { network in
            guard !network.isShutDown else { throw RemoteCallError.systemShutDown }
            if let connection = network.byNode[id.node], connection.channel.isActive { return connection }
            if let endpoint = id.endpoint, let connection = network.byEndpoint[endpoint], connection.channel.isActive {
                return connection
            }
            return nil
        }
    }

    /// An open connection to `endpoint`, dialling it when there is none (one dial at a time
    /// per endpoint; concurrent callers share it).
    func connect(to endpoint: Endpoint) async throws -> ActorConnection {
        enum Step {
            case open(ActorConnection)
            case wait(EventLoopFuture<ActorConnection>)
            case dial(EventLoopPromise<ActorConnection>)
        }
        let loop = configuration.eventLoopGroup.any()
        let step: Step = try network.withLock { network in
            guard !network.isShutDown else { throw RemoteCallError.systemShutDown }
            if let connection = network.byEndpoint[endpoint], connection.channel.isActive { return .open(connection) }
            if let dialling = network.dialling[endpoint] { return .wait(dialling) }
            let promise = loop.makePromise(of: ActorConnection.self)
            network.dialling[endpoint] = promise.futureResult
            return .dial(promise)
        }
        switch step {
        case let .open(connection):
            return connection
        case let .wait(dialling):
            return try await dialling.get()
        case let .dial(promise):
            do {
                let connection: ActorConnection
                do {
                    connection = try await dial(endpoint)
                } catch let error as HandshakeError {
                    throw error
                } catch let error as RemoteCallError {
                    throw error
                } catch {
                    // Sockets and TLS: one typed error, whatever layer failed.
                    throw RemoteCallError.connectionLost(reason: "cannot connect to \(endpoint): \(error)")
                }
                network.withLock { network in
                    network.dialling[endpoint] = nil
                    if connection.channel.isActive { network.byEndpoint[endpoint] = connection }
                }
                promise.succeed(connection)
                return connection
            } catch {
                network.withLock { $0.dialling[endpoint] = nil }
                promise.fail(error)
                throw error
            }
        }
    }

    private func dial(_ endpoint: Endpoint) async throws -> ActorConnection {
        let tlsContext = try configuration.wire.clientTLSContext()
        let role = WirePipeline.Role.client(serverHostname: endpoint.tlsServerName)
        let setUp = try await WireBootstrap.client(group: configuration.eventLoopGroup, configuration: configuration.wire)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.setUpConnection(channel, role: role, tlsContext: tlsContext, dialled: endpoint)
                }
            }
        do {
            _ = try await setUp.authenticated.get()
            _ = try await setUp.introduced.get()
        } catch {
            try? await setUp.connection.channel.close()
            throw error
        }
        return setUp.connection
    }

    struct ConnectionSetUp: Sendable {
        let connection: ActorConnection
        let authenticated: EventLoopFuture<PeerInfo>
        let introduced: EventLoopFuture<NodeID>
    }

    /// Builds a connection's pipeline: FleetWire's handlers, then an ``ActorConnectionHandler``.
    /// Runs on the channel's event loop.
    func setUpConnection(
        _ channel: any Channel, role: WirePipeline.Role, tlsContext: NIOSSLContext?, dialled: Endpoint?
    ) throws -> ConnectionSetUp {
        let authenticated = try WirePipeline.configure(
            channel, role: role, configuration: configuration.wire, tlsContext: tlsContext)
        let executor = EventLoopTaskExecutor(channel.eventLoop)
        let handler = ActorConnectionHandler(system: self, eventLoop: channel.eventLoop, executor: executor)
        let connection = ActorConnection(channel: channel, handler: handler, executor: executor, dialledEndpoint: dialled)
        handler.connection = connection
        let accepted = network.withLock { network in
            guard !network.isShutDown else { return false }
            network.all[ObjectIdentifier(connection)] = connection
            return true
        }
        guard accepted else { throw RemoteCallError.systemShutDown }
        try channel.pipeline.syncOperations.addHandler(handler)
        authenticated.assumeIsolated().whenSuccess { _ in handler.authenticated() }
        return ConnectionSetUp(connection: connection, authenticated: authenticated, introduced: handler.introduced)
    }

    /// Called by a connection's handler when the peer has introduced itself.
    func connectionIntroduced(_ connection: ActorConnection) {
        guard let peer = connection.peer else { return }
        network.withLock { $0.byNode[peer] = connection }
    }

    /// Called by a connection's handler when its channel has closed.
    func connectionClosed(_ connection: ActorConnection) {
        network.withLock { network in
            network.all[ObjectIdentifier(connection)] = nil
            if let peer = connection.peer, network.byNode[peer] === connection { network.byNode[peer] = nil }
            if let endpoint = connection.dialledEndpoint, network.byEndpoint[endpoint] === connection {
                network.byEndpoint[endpoint] = nil
            }
        }
    }
}
