import FleetWire

/// How job servers and `fleet serve` nodes find each other without being told addresses:
/// Parallel Python's autodiscovery (`ppserver.py -a`, `ppservers=("*",)`).
///
/// A node started with `fleet serve --announce` sends a small UDP datagram to ``address`` every
/// ``interval``: its TCP port, sealed with the shared secret (an HMAC-SHA256 tag). A job server
/// created with `discovery:` listens on ``address``'s port, and every node it hears under its
/// own secret joins the server's nodes, as if given in `nodes:`; a node that was given up (it
/// died, or could not be reached three times in a row) joins again when it is heard again.
/// Announcements under another secret are ignored, so clusters with different secrets can share
/// one network. Hearing a node only tells the server where to connect: the connection still
/// goes through the authenticated handshake, as for a named node.
///
/// ```swift
/// // Nodes: fleet serve --host 0.0.0.0 --announce   (FLEET_SECRET set)
/// let server = try await JobServer(workers: 2, discovery: .broadcast(), credentials: credentials)
/// ```
///
/// The default, ``broadcast(port:interval:)``, reaches the nodes of the local IPv4 network
/// (255.255.255.255); routers do not forward it. Give nodes a unicast ``address`` (the job
/// server's host) where broadcast does not reach, or name them in `nodes:` instead.
public struct NodeDiscovery: Sendable, Hashable {
    /// Where nodes send their announcements: the broadcast address, or one host (the job
    /// server's); the job server listens on its port, on every interface.
    public var address: Endpoint
    /// How often a node announces itself; a job server hears a new node within this time.
    public var interval: Duration

    /// The UDP port announcements go to by default (pp's default port, on UDP).
    public static let defaultPort = 60000

    /// Announcements sent to `address` every `interval`.
    public init(address: Endpoint, interval: Duration = .seconds(2)) {
        self.address = address
        self.interval = interval
    }

    /// Announcements broadcast on the local IPv4 network (255.255.255.255) to `port`.
    public static func broadcast(port: Int = defaultPort, interval: Duration = .seconds(2)) -> NodeDiscovery {
        NodeDiscovery(address: Endpoint(host: "255.255.255.255", port: port), interval: interval)
    }
}

/// Why discovery could not start.
public enum NodeDiscoveryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Announcements go to an IP address (a broadcast address or a host's), not a name.
    case notAnIPAddress(String)

    /// What went wrong and what to give instead.
    public var description: String {
        switch self {
        case let .notAnIPAddress(host):
            "the discovery address '\(host)' is not an IP address: give a broadcast address (255.255.255.255) or the job server's IP address"
        }
    }
}

/// What a node's announcement says, before it is sealed: where its job server can connect.
struct NodeAnnouncement: Codable, Sendable, Hashable {
    /// Marks Fleet's announcements among other datagrams on the port.
    static let magic: [UInt8] = Array("fleet-node".utf8)
    /// The announcement's layout; a listener ignores versions it does not know.
    static let version: UInt8 = 1

    /// The node's TCP port.
    var port: Int
    /// The address the node listens on, when it listens on one address only; otherwise (0.0.0.0,
    /// ::) the listener connects to the address the announcement came from.
    var host: String?

    /// The datagram for this announcement, sealed with `credentials`.
    func datagram(sealedWith credentials: Credentials) throws -> [UInt8] {
        credentials.seal(Self.magic + [Self.version] + (try BinaryEncoder().encode(self)))
    }

    /// Reads an announcement from a datagram sealed with `credentials`; `nil` for anything else
    /// (another secret, another program's datagram, a malformed one).
    init?(datagram: [UInt8], sealedWith credentials: Credentials) {
        let header = Self.magic.count + 1
        guard datagram.count > header + credentials.sealLength,
              datagram.starts(with: Self.magic), datagram[Self.magic.count] == Self.version,
              let payload = credentials.unseal(datagram),
              let announcement = try? BinaryDecoder().decode(NodeAnnouncement.self, from: Array(payload.dropFirst(header))),
              (1...65535).contains(announcement.port)
        else { return nil }
        self = announcement
    }

    init(port: Int, host: String?) {
        self.port = port
        self.host = host
    }

    /// Where a listener that heard this from `sender` (an IP address) connects.
    func endpoint(heardFrom sender: String) -> Endpoint {
        Endpoint(host: host ?? sender, port: port)
    }
}
