import FleetWire
import Foundation

/// A host `fleet launch --hosts` places ranks on: this machine, or a `fleet serve` node
/// (mpirun's `--host HOST:SLOTS`).
///
/// ```swift
/// let hosts = try ["local:1", "node-1:4", "node-2:60001:4"].map { try LaunchHost($0) }
/// let outcome = try await Launcher.run(job, hosts: hosts, credentials: credentials)
/// ```
public struct LaunchHost: Sendable, Hashable, CustomStringConvertible {
    /// This machine (processes started here), or the node at an endpoint.
    public var node: Endpoint?
    /// How many ranks it takes; `nil`: this machine's active cores, or the node's worker count
    /// (`fleet serve --workers`).
    public var slots: Int?

    /// This machine, with `slots` ranks (`nil`: one per active core).
    public static func local(slots: Int? = nil) -> LaunchHost {
        LaunchHost(node: nil, slots: slots)
    }

    /// The `fleet serve` node at `endpoint`, with `slots` ranks (`nil`: its worker count).
    public static func node(_ endpoint: Endpoint, slots: Int? = nil) -> LaunchHost {
        LaunchHost(node: endpoint, slots: slots)
    }

    private init(node: Endpoint?, slots: Int?) {
        self.node = node
        self.slots = slots
    }

    /// The most slots one host takes.
    public static let maximumSlots = 1024

    /// The default port of `fleet serve` nodes.
    public static let defaultNodePort = 60000

    /// Parses `local[:SLOTS]` (this machine), `HOST[:SLOTS]` (a node at `HOST:nodePort`) or
    /// `HOST:PORT:SLOTS`; an IPv6 host goes in brackets (`[fe80::1]:4`).
    ///
    /// - Throws: ``LaunchError/invalidHost(_:_:)`` saying what is wrong.
    public init(_ text: String, nodePort: Int = defaultNodePort) throws(LaunchError) {
        let text = text.trimmingCharacters(in: .whitespaces)
        var host: Substring
        var rest: [Substring]
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidHost(text, "missing ']' after the IPv6 address") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { throw .invalidHost(text, "expected ':' after ']'") }
            rest = after.isEmpty ? [] : after.dropFirst().split(separator: ":", omittingEmptySubsequences: false)
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            host = parts[0]
            rest = Array(parts.dropFirst())
        }
        guard !host.isEmpty else { throw .invalidHost(text, "the host is empty") }
        guard rest.count <= 2 else { throw .invalidHost(text, "expected HOST, HOST:SLOTS or HOST:PORT:SLOTS") }
        let numbers = try rest.map { part throws(LaunchError) -> Int in
            guard let number = Int(part) else { throw .invalidHost(text, "'\(part)' is not a number") }
            return number
        }
        var port = nodePort
        if numbers.count == 2 {
            guard (1...65535).contains(numbers[0]) else { throw .invalidHost(text, "port \(numbers[0]) is outside 1...65535") }
            port = numbers[0]
        }
        let slots = numbers.last
        if let slots, slots < 1 { throw .invalidHost(text, "a host takes at least 1 slot, not \(slots)") }
        if let slots, slots > Self.maximumSlots {
            // HOST:60000 reads as 60000 slots, as mpirun reads it; a port wants HOST:PORT:SLOTS.
            throw .invalidHost(text, "\(slots) slots is over \(Self.maximumSlots); for a node's port write HOST:PORT:SLOTS")
        }
        if host == "local" {
            guard numbers.count <= 1 else { throw .invalidHost(text, "'local' takes slots only: local[:SLOTS]") }
            self.init(node: nil, slots: slots)
        } else {
            self.init(node: Endpoint(host: String(host), port: port), slots: slots)
        }
    }

    /// `local:2`, `node-1:60000:4`, `node-2:60000` (its worker count).
    public var description: String {
        let place = node.map(\.description) ?? "local"
        return slots.map { "\(place):\($0)" } ?? place
    }
}

/// Why `fleet launch --hosts` could not start a job on its hosts.
public enum LaunchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A host could not be parsed.
    case invalidHost(String, String)
    /// The hosts have fewer slots than the job has ranks.
    case notEnoughSlots(ranks: Int, slots: Int)
    /// A node could not be reached, refused the launcher (a wrong secret), or cannot run the
    /// program (another system).
    case nodeUnavailable(Endpoint, String)

    /// What went wrong, in a sentence.
    public var description: String {
        switch self {
        case let .invalidHost(text, reason): "invalid host '\(text)': \(reason)"
        case let .notEnoughSlots(ranks, slots):
            "\(ranks) ranks but only \(slots) slots on the hosts: add hosts, or slots (HOST:SLOTS)"
        case let .nodeUnavailable(endpoint, reason): "node \(endpoint) cannot take ranks: \(reason)"
        }
    }
}
