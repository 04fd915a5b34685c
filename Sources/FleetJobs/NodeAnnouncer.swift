import FleetWire
import Logging
import NIOCore
import NIOPosix

/// A node's side of ``NodeDiscovery``: sends the node's sealed announcement every interval
/// until stopped, from a UDP socket of its own.
final class NodeAnnouncer: Sendable {
    private let channel: any Channel
    private let task: RepeatedTask

    /// Starts announcing that a node listens on `listening` (its bound endpoint).
    ///
    /// - Throws: ``NodeDiscoveryError/notAnIPAddress(_:)`` when the announcement address is not an IP
    ///   address; socket errors.
    init(announcing listening: Endpoint, to discovery: NodeDiscovery, credentials: Credentials, logger: Logger) async throws {
        let target: SocketAddress
        do {
            target = try SocketAddress(ipAddress: discovery.address.host, port: discovery.address.port)
        } catch {
            throw NodeDiscoveryError.notAnIPAddress(discovery.address.host)
        }
        let wildcard = ["0.0.0.0", "::", ""].contains(listening.host)
        let datagram = try NodeAnnouncement(port: listening.port, host: wildcard ? nil : listening.host)
            .datagram(sealedWith: credentials)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .bind(host: target.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
            .get()
        self.channel = channel
        let interval = TimeAmount(discovery.interval)
        let failed = NIOLoopBoundBox.makeBoxSendingValue(false, as: Bool.self, eventLoop: channel.eventLoop)
        task = channel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            var buffer = channel.allocator.buffer(capacity: datagram.count)
            buffer.writeBytes(datagram)
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: buffer)).whenComplete { result in
                switch result {
                case .success where failed.value:
                    failed.value = false
                    logger.info("announcing this node to \(discovery.address) again")
                case let .failure(error) where !failed.value:
                    failed.value = true   // Said once, not every interval.
                    logger.warning("cannot announce this node to \(discovery.address): \(error)")
                default: break
                }
            }
        }
    }

    /// Stops announcing and closes the socket.
    func stop() async {
        let cancelled = channel.eventLoop.makePromise(of: Void.self)
        task.cancel(promise: cancelled)
        try? await cancelled.futureResult.get()
        try? await channel.close()
    }
}
