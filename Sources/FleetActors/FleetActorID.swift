import Distributed
import FleetWire
import Synchronization

/// The identity of one actor system (one process's ``FleetActorSystem``): 128 random bits,
/// chosen when the system starts.
public struct NodeID: Hashable, Sendable, Codable, CustomStringConvertible {
    let high: UInt64
    let low: UInt64

    /// A new, random node identity.
    static func random() -> NodeID {
        var generator = SystemRandomNumberGenerator()
        return NodeID(high: generator.next(), low: generator.next())
    }

    /// The first 12 hex digits: enough to tell nodes apart in logs.
    public var description: String {
        let hex = String(high, radix: 16)
        return String((String(repeating: "0", count: 16 - hex.count) + hex).prefix(12))
    }
}

/// The identity of a distributed actor in a ``FleetActorSystem``: the node that hosts it, a
/// number unique within that node and, for published actors, the name it is published under.
///
/// IDs are values: pass them around, store them, send them to other nodes. Resolving one
/// (`Act.resolve(id:using:)`) gives the local actor or a proxy whose calls travel to the node
/// that hosts it.
///
/// Two IDs are equal when they name the same actor on the same node (node and number); the name
/// and the endpoint are lookup hints.
public struct FleetActorID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The node (actor system) that hosts the actor.
    public let node: NodeID
    /// The actor's serial number on its node; 0 for an ID known only by name.
    public let number: UInt64
    /// The name the actor is published under, if it was resolved by name.
    public let name: String?
    /// Where this process reached the node, when it dialled it: lets a call reconnect after the
    /// connection was lost. Local to this process; not sent on the wire.
    public internal(set) var endpoint: Endpoint?
    /// This process's hold on the actor, when the ID arrived from the node that hosts it: while
    /// any copy of the ID lives here, that node keeps the actor alive for this one. Local to
    /// this process; not sent on the wire.
    var holding: HeldReference?

    init(node: NodeID, number: UInt64, name: String? = nil, endpoint: Endpoint? = nil) {
        self.node = node
        self.number = number
        self.name = name
        self.endpoint = endpoint
    }

    public static func == (lhs: FleetActorID, rhs: FleetActorID) -> Bool {
        lhs.node == rhs.node && lhs.number == rhs.number && (lhs.number != 0 || lhs.name == rhs.name)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(node)
        hasher.combine(number)
        if number == 0 { hasher.combine(name) }
    }

    /// `name@node` or `#number@node`, plus the endpoint when known.
    public var description: String {
        let local = name.map { "'\($0)'" } ?? "#\(number)"
        return "\(local)@\(node)" + (endpoint.map { " (\($0))" } ?? "")
    }

    private enum CodingKeys: String, CodingKey {
        case node, number, name
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        node = try container.decode(NodeID.self, forKey: .node)
        number = try container.decode(UInt64.self, forKey: .number)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        // An ID of the node at the other end of the connection it arrived on can be reached
        // again where this side dialled that node.
        if let origin = decoder.userInfo[.fleetConnection] as? ConnectionOrigin, origin.peer == node {
            endpoint = origin.dialledEndpoint
            // The peer keeps the actor alive until this process lets go of every copy.
            if number != 0 { holding = origin.connection?.holdReference(to: number) }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        (BinaryEncoder.context(of: encoder) as? SentActorIDs)?.append(self)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(node, forKey: .node)
        try container.encode(number, forKey: .number)
        try container.encodeIfPresent(name, forKey: .name)
    }
}

/// What a decoder knows about the connection the bytes came from.
struct ConnectionOrigin: Sendable {
    let peer: NodeID
    let dialledEndpoint: Endpoint?
    /// The connection, to hold the references to the peer's actors that arrive on it.
    weak var connection: ActorConnection?
}

/// Collects the actor IDs written while encoding a call or a reply, so that the connection can
/// keep those actors alive for the peer that now holds references to them.
final class SentActorIDs: Sendable {
    private let ids = Mutex<[FleetActorID]>([])

    func append(_ id: FleetActorID) {
        ids.withLock { $0.append(id) }
    }

    /// The local actors among the IDs written (once per time written), resolved in `system`.
    /// IDs known only by name are left out: the name keeps a published actor alive.
    func localActors(in system: FleetActorSystem) -> [any DistributedActor] {
        ids.withLock { $0 }.compactMap { $0.node == system.node && $0.number != 0 ? system.localActor(for: $0) : nil }
    }
}

extension CodingUserInfoKey {
    /// The ``ConnectionOrigin`` of the bytes being decoded.
    static let fleetConnection = CodingUserInfoKey(rawValue: "fleet.connection")!
}
