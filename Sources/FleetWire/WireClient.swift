import NIOCore
import NIOPosix

/// Connects to Fleet servers.
public enum WireClient {
    /// Connects to `endpoint`, runs the handshake, and runs `body` with the connection, which
    /// closes when `body` returns or throws.
    ///
    /// ```swift
    /// let reply = try await WireClient.withConnection(to: try Endpoint("node-1:60000"),
    ///                                                 configuration: configuration) { connection in
    ///     try await connection.send(Frame(kind: .ping))
    ///     return try await connection.inbound.first { _ in true }
    /// }
    /// ```
    ///
    /// - Throws: ``HandshakeError`` when the server refuses (its reason included) or fails to
    ///   prove the secret; connection errors; whatever `body` throws.
    public static func withConnection<Result: Sendable>(
        to endpoint: Endpoint,
        configuration: WireConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: (WireConnection) async throws -> Result
    ) async throws -> Result {
        let tlsContext = try configuration.clientTLSContext()
        let role = WirePipeline.Role.client(serverHostname: endpoint.tlsServerName)
        let pending = try await WireBootstrap.client(group: eventLoopGroup, configuration: configuration)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try PendingConnection(channel, role: role, configuration: configuration, tlsContext: tlsContext)
                }
            }
        return try await pending.withAuthenticatedConnection(body)
    }
}
