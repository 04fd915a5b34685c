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
    /// How long a FleetActors connection's event loop keeps polling for the peer's next message
    /// before it sleeps, when the last exchanges suggest the message is near (default 100 µs;
    /// `.zero` turns polling off).
    ///
    /// Waking a sleeping thread costs tens of microseconds on virtual machines, on both sides of
    /// a connection; a loop that is still polling when a reply arrives reads it at once. That
    /// makes a short remote call several times faster, at the price of up to this much processor
    /// time per wait. The loop polls only after an exchange that was quick, and otherwise on one
    /// wait in sixteen, so slow or idle connections cost next to nothing; it stops as soon as any
    /// Fleet connection on it has data or Fleet queues work for it, and it does not poll while a
    /// write waits for room. While it polls it runs nothing else: other channels and work of
    /// other libraries on the same event loop (FleetActors' default group is
    /// `MultiThreadedEventLoopGroup.singleton`) may wait up to this long.
    ///
    /// FleetMPI's TCP links poll the same way, for the launch's spin budget
    /// (`FLEET_MPI_SPIN_US`); a ``WireConnection`` never polls.
    public var busyPoll: Duration

    /// Creates a configuration; everything but the credentials has a default.
    public init(
        credentials: Credentials,
        tls: TLSOptions? = nil,
        maximumPayloadSize: Int = Frame.defaultMaximumPayloadSize,
        handshakeTimeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(10),
        localPeer: PeerInfo = .local(),
        logger: Logger = Logger(label: "fleet.wire"),
        busyPoll: Duration = .microseconds(100)
    ) {
        self.credentials = credentials
        self.tls = tls
        self.maximumPayloadSize = maximumPayloadSize
        self.handshakeTimeout = handshakeTimeout
        self.connectTimeout = connectTimeout
        self.localPeer = localPeer
        self.logger = logger
        self.busyPoll = busyPoll
    }
}
