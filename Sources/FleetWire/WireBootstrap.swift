import NIOCore
import NIOPosix
import NIOSSL

/// The socket setup every Fleet server and client shares, for the layers that drive channels
/// themselves (FleetActors) as well as ``WireListener`` and ``WireClient``.
package enum WireBootstrap {
    /// A server bootstrap with Fleet's socket options (address reuse, no Nagle delay).
    package static func server(group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    }

    /// A client bootstrap with Fleet's socket options and the configuration's connect timeout.
    package static func client(group: any EventLoopGroup, configuration: WireConfiguration) -> ClientBootstrap {
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
    }
}

extension WireConfiguration {
    /// Checks that a server with this configuration may listen on `endpoint` and makes its TLS
    /// context, if any.
    ///
    /// - Throws: ``SecretError/insecureRequiresLoopback(host:)`` for insecure credentials on an
    ///   address other than loopback; TLS errors for unreadable certificates.
    package func serverTLSContext(binding endpoint: Endpoint) throws -> NIOSSLContext? {
        if case .insecure = credentials, !endpoint.isLoopback {
            throw SecretError.insecureRequiresLoopback(host: endpoint.host)
        }
        return try tls.map { try $0.makeServerContext() }
    }

    /// The TLS context a client with this configuration uses, if any.
    package func clientTLSContext() throws -> NIOSSLContext? {
        try tls.map { try $0.makeClientContext() }
    }
}

extension Endpoint {
    /// The address to bind: an empty host means every IPv4 interface.
    package var bindHost: String { host.isEmpty ? "0.0.0.0" : host }
}
