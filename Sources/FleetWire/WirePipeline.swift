import NIOCore
import NIOSSL

/// Builds the channel pipeline every Fleet connection shares:
/// `[TLS] → FrameDecoder → FrameEncoder → HandshakeHandler → WireControlHandler`.
///
/// Layers above FleetWire add their own handlers after these (or an `NIOAsyncChannel`); frames
/// reach them only once the peer is authenticated.
package enum WirePipeline {
    package enum Role: Sendable {
        case server
        /// A client; the name is used for TLS server-name checks where it is a host name.
        case client(serverHostname: String?)
    }

    /// Adds Fleet's handlers to `channel`; must run on the channel's event loop. Frames are
    /// offered to `sink` first, once it is set (``FrameSink``).
    ///
    /// - Returns: a future that completes with the peer once the handshake succeeds.
    package static func configure(
        _ channel: any Channel, role: Role, configuration: WireConfiguration, tlsContext: NIOSSLContext?,
        sink: FrameSink? = nil
    ) throws -> EventLoopFuture<PeerInfo> {
        let operations = channel.pipeline.syncOperations
        if let tlsContext {
            switch role {
            case .server:
                try operations.addHandler(NIOSSLServerHandler(context: tlsContext))
            case let .client(hostname):
                try operations.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: hostname))
            }
        }
        let limit = PayloadLimit(min(PayloadLimit.handshake, configuration.maximumPayloadSize))
        let handshake = HandshakeHandler(
            role: role.isServer ? .server : .client,
            credentials: configuration.credentials,
            localPeer: configuration.localPeer,
            timeout: TimeAmount(configuration.handshakeTimeout),
            logger: configuration.logger,
            eventLoop: channel.eventLoop,
            payloadLimit: limit,
            authenticatedPayloadLimit: configuration.maximumPayloadSize
        )
        do {
            try operations.addHandlers([
                ByteToMessageHandler(FrameDecoder(limit: limit, sink: sink)),
                FrameEncoder(maximumPayloadSize: configuration.maximumPayloadSize),
                handshake,
                WireControlHandler(logger: configuration.logger),
            ])
        } catch {
            handshake.abandon(error)
            throw error
        }
        return handshake.authenticated
    }
}

extension WirePipeline.Role {
    var isServer: Bool {
        if case .server = self { return true }
        return false
    }
}

extension Endpoint {
    /// The name to send for TLS SNI and hostname checks: `nil` for IP address literals.
    package var tlsServerName: String? {
        host.contains(":") || ipv4Octets != nil ? nil : host
    }
}
