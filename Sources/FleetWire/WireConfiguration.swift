import Logging
import NIOCore

/// How a Fleet connection authenticates, encrypts and limits what it accepts.
///
/// ```swift
/// let credentials = try Credentials.resolve(secretFile: options.secretFile, insecure: false)
/// var configuration = WireConfiguration(credentials: credentials)
/// configuration.tls = TLSOptions(trustRootsFile: "ca.pem")
/// ```
public struct WireConfiguration: Sendable {
    /// The shared secret, or insecure mode (loopback only for servers).
    public var credentials: Credentials
    /// TLS under the handshake; `nil` for plain TCP.
    public var tls: TLSOptions?
    /// The largest frame payload accepted or sent, in bytes (default 64 MiB).
    public var maximumPayloadSize: Int
    /// How long the handshake may take before the connection is dropped (default 10 s).
    public var handshakeTimeout: Duration
    /// How long a client waits for a TCP connection (default 10 s).
    public var connectTimeout: Duration
    /// How this side introduces itself in the handshake.
    public var localPeer: PeerInfo
    /// Where handshake failures and protocol errors are logged.
    public var logger: Logger

    /// Creates a configuration; everything but the credentials has a default.
    public init(
        credentials: Credentials,
        tls: TLSOptions? = nil,
        maximumPayloadSize: Int = Frame.defaultMaximumPayloadSize,
        handshakeTimeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(10),
        localPeer: PeerInfo = .local(),
        logger: Logger = Logger(label: "fleet.wire")
    ) {
        self.credentials = credentials
        self.tls = tls
        self.maximumPayloadSize = maximumPayloadSize
        self.handshakeTimeout = handshakeTimeout
        self.connectTimeout = connectTimeout
        self.localPeer = localPeer
        self.logger = logger
    }
}
