import FleetWire
import NIOCore
import NIOPosix

/// A job server's side of ``NodeDiscovery``: listens for announcements on the discovery port
/// and reports each node heard under the server's secret, every time it is heard.
final class NodeListener: Sendable {
    private let channel: any Channel
    /// Where it listens (the real port when 0 was asked for).
    let endpoint: Endpoint

    /// Starts listening on every IPv4 interface, on `discovery`'s port; `heard` is called on
    /// an event loop with each node's endpoint.
    init(
        for discovery: NodeDiscovery, credentials: Credentials, heard: @escaping @Sendable (Endpoint) -> Void
    ) async throws {
        channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // Several job servers on one host can all hear the broadcasts.
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        AnnouncementHandler(credentials: credentials, heard: heard))
                }
            }
            .bind(host: "0.0.0.0", port: discovery.address.port)
            .get()
        endpoint = Endpoint(host: "0.0.0.0", port: channel.localAddress?.port ?? discovery.address.port)
    }

    /// Stops listening.
    func stop() async {
        try? await channel.close()
    }
}

/// Reads announcements; ignores everything else that arrives on the port.
private final class AnnouncementHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let credentials: Credentials
    private let heard: @Sendable (Endpoint) -> Void

    init(credentials: Credentials, heard: @escaping @Sendable (Endpoint) -> Void) {
        self.credentials = credentials
        self.heard = heard
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let sender = envelope.remoteAddress.ipAddress,
              let announcement = NodeAnnouncement(datagram: Array(envelope.data.readableBytesView), sealedWith: credentials)
        else { return }
        heard(announcement.endpoint(heardFrom: sender))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket's errors (an ICMP report, a truncated read) concern one datagram,
        // not the socket: keep listening.
    }
}
