import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A Fleet server socket: accepts connections, authenticates them, and hands each one to a
/// handler in its own child task.
///
/// A connection that fails the handshake, or sends malformed frames, is closed and logged; the
/// listener and its other connections carry on.
///
/// ```swift
/// let listener = try await WireListener.bind(
///     to: Endpoint(host: "127.0.0.1", port: 0), configuration: configuration)
/// print("listening on", listener.localEndpoint)
/// try await listener.run { connection in
///     for try await frame in connection.inbound { try await connection.send(frame) }   // echo
/// }
/// ```
public final class WireListener: Sendable {
    /// The address the listener is bound to, with the real port when port 0 was asked for.
    public let localEndpoint: Endpoint

    private let serverChannel: NIOAsyncChannel<PendingConnection, Never>
    private let configuration: WireConfiguration
    private let started = Mutex(false)

    private init(serverChannel: NIOAsyncChannel<PendingConnection, Never>, localEndpoint: Endpoint, configuration: WireConfiguration) {
        self.serverChannel = serverChannel
        self.localEndpoint = localEndpoint
        self.configuration = configuration
    }

    /// Binds a listener.
    ///
    /// - Throws: ``SecretError/insecureRequiresLoopback(host:)`` for insecure credentials on an
    ///   address other than loopback; TLS errors for unreadable certificates; socket errors.
    public static func bind(
        to endpoint: Endpoint,
        configuration: WireConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> WireListener {
        let tlsContext = try configuration.serverTLSContext(binding: endpoint)
        let serverChannel = try await WireBootstrap.server(group: eventLoopGroup)
            .bind(host: endpoint.bindHost, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try PendingConnection(channel, role: .server, configuration: configuration, tlsContext: tlsContext)
                }
            }
        let address = serverChannel.channel.localAddress
        let local = Endpoint(host: address?.ipAddress ?? endpoint.host, port: address?.port ?? endpoint.port)
        return WireListener(serverChannel: serverChannel, localEndpoint: local, configuration: configuration)
    }

    /// Accepts connections until the listener is closed or the task is cancelled, running
    /// `handler` for each authenticated one in a child task. Errors a handler throws are logged
    /// and close that connection only.
    ///
    /// Call it once per listener.
    public func run(_ handler: @escaping @Sendable (WireConnection) async throws -> Void) async throws {
        let first = started.withLock { started in
            defer { started = true }
            return !started
        }
        precondition(first, "WireListener.run may be called only once")
        let logger = configuration.logger
        try await serverChannel.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await pending in inbound {
                    group.addTask {
                        await pending.serve(logger: logger, handler)
                    }
                }
            }
        }
    }

    /// Stops accepting connections; ``run(_:)`` returns once its connections have finished.
    public func close() async {
        try? await serverChannel.channel.close()
    }
}

/// A connection whose handshake is under way.
struct PendingConnection: Sendable {
    let authenticated: EventLoopFuture<PeerInfo>
    let channel: NIOAsyncChannel<Frame, Frame>
    let maximumPayloadSize: Int

    /// Sets up Fleet's pipeline on a new channel and wraps it for async use; runs on the
    /// channel's event loop, inside a bootstrap's channel initializer.
    init(_ channel: any Channel, role: WirePipeline.Role, configuration: WireConfiguration, tlsContext: NIOSSLContext?) throws {
        authenticated = try WirePipeline.configure(channel, role: role, configuration: configuration, tlsContext: tlsContext)
        self.channel = try NIOAsyncChannel<Frame, Frame>(wrappingChannelSynchronously: channel)
        maximumPayloadSize = configuration.maximumPayloadSize
    }

    /// Waits for the handshake, then runs `body` with the connection and closes it.
    func withAuthenticatedConnection<Result: Sendable>(
        _ body: (WireConnection) async throws -> Result
    ) async throws -> Result {
        let peer: PeerInfo
        do {
            peer = try await authenticated.get()
        } catch {
            try? await channel.executeThenClose { _, _ in }
            throw error
        }
        let remote = channel.channel.remoteAddress
        return try await channel.executeThenClose { inbound, outbound in
            try await body(WireConnection(
                peer: peer, remoteAddress: remote, inbound: WireInbound(stream: inbound), outbound: outbound,
                maximumPayloadSize: maximumPayloadSize))
        }
    }

    func serve(logger: Logger, _ handler: @Sendable (WireConnection) async throws -> Void) async {
        do {
            try await withAuthenticatedConnection(handler)
        } catch is HandshakeError {
            // Logged by the handshake handler, with the reason.
        } catch {
            logger.debug("connection ended with an error", metadata: ["error": "\(error)"])
        }
    }
}
