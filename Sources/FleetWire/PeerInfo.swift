#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Who is on the other end of a connection, as it said in the handshake.
///
/// The operating system and architecture let a job server refuse to ship a binary to a node that
/// cannot run it, with a clear message instead of a crash.
public struct PeerInfo: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A name for logs, e.g. the program and host.
    public var name: String
    /// The operating system, e.g. `linux`.
    public var operatingSystem: String
    /// The CPU architecture, e.g. `x86_64` or `arm64`.
    public var architecture: String
    /// The peer's process ID.
    public var processID: Int32
    /// The peer's Fleet wire protocol version.
    public var protocolVersion: ProtocolVersion

    /// Creates a description of a peer.
    public init(
        name: String, operatingSystem: String, architecture: String, processID: Int32,
        protocolVersion: ProtocolVersion = .current
    ) {
        self.name = name
        self.operatingSystem = operatingSystem
        self.architecture = architecture
        self.processID = processID
        self.protocolVersion = protocolVersion
    }

    /// This process, named `name` (by default the program's name and the host name).
    public static func local(name: String? = nil) -> PeerInfo {
        let info = ProcessInfo.processInfo
        return PeerInfo(
            name: name ?? "\(info.processName)@\(info.hostName)",
            operatingSystem: Self.currentOperatingSystem,
            architecture: Self.currentArchitecture,
            processID: info.processIdentifier
        )
    }

    /// The operating system this code was built for.
    public static var currentOperatingSystem: String {
        #if os(Linux)
        "linux"
        #elseif os(macOS)
        "macos"
        #else
        "unknown"
        #endif
    }

    /// The architecture this code was built for.
    public static var currentArchitecture: String {
        #if arch(x86_64)
        "x86_64"
        #elseif arch(arm64)
        "arm64"
        #else
        "unknown"
        #endif
    }

    public var description: String {
        "\(name) (pid \(processID), \(operatingSystem)/\(architecture), fleet/\(protocolVersion))"
    }
}

/// The version of Fleet's wire protocol. Peers talk when their major versions are equal.
public struct ProtocolVersion: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Changes that old peers cannot understand.
    public var major: UInt16
    /// Additions that old peers can ignore.
    public var minor: UInt16

    /// Creates a version.
    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// The version this build speaks.
    public static let current = ProtocolVersion(major: 1, minor: 0)

    /// Whether a peer speaking `other` can talk to this one.
    public func isCompatible(with other: ProtocolVersion) -> Bool { major == other.major }

    public var description: String { "\(major).\(minor)" }
}
