import Distributed
import FleetWire
import NIOCore
import Synchronization

/// A distributed actor system over Fleet's wire: RPyC for Swift.
///
/// Host actors in one process, call their `distributed func`s from another as if they were
/// local. Connections are authenticated with the shared secret (optionally under TLS), calls are
/// multiplexed over one connection per pair of processes, every call has a deadline, and every
/// failure arrives as a typed error.
///
/// Server:
///
/// ```swift
/// distributed actor Primes {
///     typealias ActorSystem = FleetActorSystem
///     distributed func first(_ n: Int) -> [Int] { ... }
/// }
///
/// let credentials = try Credentials.resolve(secretFile: nil, insecure: false)   // FLEET_SECRET
/// let system = FleetActorSystem(configuration: .init(credentials: credentials))
/// try await system.listen(on: try Endpoint("0.0.0.0:18861"))
/// system.publish(Primes(actorSystem: system), as: "primes")
/// await system.waitUntilShutdown()
/// ```
///
/// Client:
///
/// ```swift
/// let system = FleetActorSystem(configuration: .init(credentials: credentials))
/// let primes = try await system.resolve(Primes.self, named: "primes", at: try Endpoint("server:18861"))
/// print(try await primes.first(500).suffix(20))
/// ```
///
/// Both sides are symmetric: a client can host actors too, and pass them to the server, which
/// calls them back over the same connection.
public final class FleetActorSystem: DistributedActorSystem, Sendable {
    /// Actors are identified by node, number and (when published) name.
    public typealias ActorID = FleetActorID
    /// Records a call's arguments into its frame.
    public typealias InvocationEncoder = FleetInvocationEncoder
    /// Reads a call's arguments from its frame.
    public typealias InvocationDecoder = FleetInvocationDecoder
    /// Sends a served call's outcome back.
    public typealias ResultHandler = FleetResultHandler
    /// Arguments, results and thrown errors cross the wire with the binary `Codable` coder.
    public typealias SerializationRequirement = any Codable

    /// This system's identity; part of the ID of every actor it hosts.
    public let node: NodeID
    /// How the system connects, authenticates and runs calls.
    public let configuration: Configuration

    let registry = Mutex(Registry())
    let network = Mutex(Network())
    private let serials = Atomic<UInt64>(0)
    let shutdownPromise: EventLoopPromise<Void>

    /// Creates a system; it connects to other nodes on demand and accepts connections after
    /// ``listen(on:)``.
    public init(configuration: Configuration) {
        self.node = .random()
        self.configuration = configuration
        self.shutdownPromise = configuration.eventLoopGroup.any().makePromise(of: Void.self)
    }

    // MARK: Actors hosted here

    struct Registry {
        var actors: [UInt64: WeakActor] = [:]
        var names: [String: any DistributedActor] = [:]
    }

    struct WeakActor {
        weak var actor: (any DistributedActor)?
    }

    /// Publishes `actor` under `name`, so that other nodes can resolve it with
    /// ``resolve(_:named:at:)``. The system keeps a published actor alive until
    /// ``unpublish(_:)``; publishing another actor under the name replaces it.
    public func publish<Act: DistributedActor>(_ actor: Act, as name: String) where Act.ActorSystem == FleetActorSystem {
        registry.withLock { $0.names[name] = actor }
    }

    /// Withdraws the actor published under `name`: new resolutions by that name fail with
    /// ``RemoteCallError/actorNotFound(_:)``, and so do calls on earlier references once the
    /// actor has deinitialized (references name the actor itself, not only the name).
    public func unpublish(_ name: String) {
        _ = registry.withLock { $0.names.removeValue(forKey: name) }
    }

    /// The hosted actor an ID names: by number when it is this node's, else by name.
    func localActor(for id: FleetActorID) -> (any DistributedActor)? {
        registry.withLock { registry in
            if id.node == node, let actor = registry.actors[id.number]?.actor { return actor }
            if let name = id.name { return registry.names[name] }
            return nil
        }
    }

    // MARK: DistributedActorSystem

    /// A new ID on this node for an actor being initialized.
    public func assignID<Act>(_ actorType: Act.Type) -> FleetActorID where Act: DistributedActor, Act.ID == FleetActorID {
        FleetActorID(node: node, number: serials.add(1, ordering: .relaxed).newValue)
    }

    /// Registers an initialized actor so that calls from other nodes can reach it; the system
    /// holds it weakly.
    public func actorReady<Act>(_ actor: Act) where Act: DistributedActor, Act.ID == FleetActorID {
        registry.withLock { $0.actors[actor.id.number] = WeakActor(actor: actor) }
    }

    /// Forgets an actor that deinitialized; later calls to it fail with
    /// ``RemoteCallError/actorNotFound(_:)``.
    public func resignID(_ id: FleetActorID) {
        guard id.node == node else { return }
        _ = registry.withLock { $0.actors.removeValue(forKey: id.number) }
    }

    /// The local actor for an ID of this node, or `nil` for another node's (the runtime then
    /// makes a proxy whose calls go there).
    ///
    /// - Throws: ``RemoteCallError/actorNotFound(_:)`` for an ID of this node that names no
    ///   living actor of type `Act`.
    public func resolve<Act>(id: FleetActorID, as actorType: Act.Type) throws -> Act? where Act: DistributedActor, Act.ID == FleetActorID {
        guard id.node == node else { return nil }
        guard let actor = localActor(for: id) as? Act else { throw RemoteCallError.actorNotFound(id) }
        return actor
    }

    /// A fresh encoder for one call's arguments.
    public func makeInvocationEncoder() -> FleetInvocationEncoder {
        FleetInvocationEncoder()
    }

    /// Sends a call to the node hosting `actor` and returns its decoded result.
    ///
    /// - Throws: the remote function's error (as itself when `Codable`), ``RemoteError``, or
    ///   ``RemoteCallError``.
    public func remoteCall<Act, Err, Res>(
        on actor: Act, target: RemoteCallTarget, invocation: inout FleetInvocationEncoder,
        throwing: Err.Type, returning: Res.Type
    ) async throws -> Res where Act: DistributedActor, Act.ID == FleetActorID, Err: Error, Res: Codable {
        let (body, decoder) = try await call(actor.id, target: target.identifier, invocation: &invocation)
        do {
            return try decoder.decode(Res.self, from: body)
        } catch {
            throw RemoteCallError.invalidResult("\(Res.self): \(error)")
        }
    }

    /// Sends a call to the node hosting `actor` and waits for it to return.
    ///
    /// - Throws: as ``remoteCall(on:target:invocation:throwing:returning:)``.
    public func remoteCallVoid<Act, Err>(
        on actor: Act, target: RemoteCallTarget, invocation: inout FleetInvocationEncoder, throwing: Err.Type
    ) async throws where Act: DistributedActor, Act.ID == FleetActorID, Err: Error {
        _ = try await call(actor.id, target: target.identifier, invocation: &invocation)
    }

    /// Runs a call a peer made on the local `actor` and hands the outcome to `handler`.
    func invoke(
        _ actor: any DistributedActor, target: String, invocation: FleetInvocationDecoder, handler: FleetResultHandler
    ) async {
        var invocation = invocation
        if let resolved = ResolvedTarget.named(target) {
            return await resolved.execute(on: actor, invocation: &invocation, handler: handler)
        }
        do {
            try await executeDistributedTarget(
                on: actor, target: RemoteCallTarget(target), invocationDecoder: &invocation, handler: handler)
        } catch {
            handler.fail(CallFailure(runtimeError: error) ?? .invalidArguments("\(error)"))
        }
    }
}
