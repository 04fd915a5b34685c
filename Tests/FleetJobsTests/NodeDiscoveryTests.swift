import FleetActors
import FleetActorsTestSupport
import FleetWire
import Foundation
import Logging
import Synchronization
import Testing

@testable import FleetJobs

/// Nodes announcing themselves and job servers hearing them (pp's autodiscovery), on loopback.
@Suite("Node discovery")
struct NodeDiscoveryTests {
    let credentials = Credentials.secret(try! Secret(Array("discovery-secret".utf8)))

    @Test func anAnnouncementIsReadOnlyUnderTheSecretItWasSealedWith() throws {
        let announcement = NodeAnnouncement(port: 60001, host: "10.0.0.7")
        let datagram = try announcement.datagram(sealedWith: credentials)
        #expect(NodeAnnouncement(datagram: datagram, sealedWith: credentials) == announcement)

        let other = Credentials.secret(try Secret(Array("another-secret".utf8)))
        #expect(NodeAnnouncement(datagram: datagram, sealedWith: other) == nil)
        #expect(NodeAnnouncement(datagram: datagram, sealedWith: .insecure) == nil)
        var tampered = datagram
        tampered[NodeAnnouncement.magic.count + 2] ^= 1
        #expect(NodeAnnouncement(datagram: tampered, sealedWith: credentials) == nil)
        #expect(NodeAnnouncement(datagram: Array(datagram.dropLast()), sealedWith: credentials) == nil)
        #expect(NodeAnnouncement(datagram: Array(datagram.prefix(5)), sealedWith: credentials) == nil)
        #expect(NodeAnnouncement(datagram: [], sealedWith: credentials) == nil)

        // Without a secret there is no tag, and a sealed datagram is not taken for a plain one.
        let plain = try announcement.datagram(sealedWith: .insecure)
        #expect(NodeAnnouncement(datagram: plain, sealedWith: .insecure) == announcement)
        #expect(NodeAnnouncement(datagram: plain, sealedWith: credentials) == nil)

        // A node on every interface is reached where its announcement came from.
        let wildcard = NodeAnnouncement(port: 60002, host: nil)
        #expect(wildcard.endpoint(heardFrom: "192.168.1.9") == Endpoint(host: "192.168.1.9", port: 60002))
        #expect(announcement.endpoint(heardFrom: "192.168.1.9") == Endpoint(host: "10.0.0.7", port: 60001))
    }

    @Test func aListenerHearsNodesUnderItsSecretAndIgnoresTheRest() async throws {
        let heard = Mutex<[Endpoint]>([])
        let listener = try await NodeListener(
            for: NodeDiscovery(address: Endpoint(host: "127.0.0.1", port: 0)), credentials: credentials
        ) { node in heard.withLock { $0.append(node) } }
        let target = NodeDiscovery(address: Endpoint(host: "127.0.0.1", port: listener.endpoint.port), interval: .milliseconds(20))
        let logger = Logger(label: "test")
        // One node on every interface, one on an address of its own, one under another secret.
        let wildcard = try await NodeAnnouncer(
            announcing: Endpoint(host: "0.0.0.0", port: 40001), to: target, credentials: credentials, logger: logger)
        let bound = try await NodeAnnouncer(
            announcing: Endpoint(host: "127.0.0.1", port: 40002), to: target, credentials: credentials, logger: logger)
        let stranger = try await NodeAnnouncer(
            announcing: Endpoint(host: "127.0.0.1", port: 40003), to: target,
            credentials: .secret(try Secret(Array("another-secret".utf8))), logger: logger)
        // Garbage on the port is ignored too, and the listener keeps listening.
        let garbage = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(garbage) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(listener.endpoint.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        for size in [0, 1, 40, 1000] {
            let bytes = [UInt8](repeating: 0x66, count: size)
            _ = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(garbage, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }

        let expected: Set = [Endpoint(host: "127.0.0.1", port: 40001), Endpoint(host: "127.0.0.1", port: 40002)]
        // Each announces every 20 ms: within 10 s both are heard several times.
        for _ in 0..<500 {
            let nodes = heard.withLock { $0 }
            if Set(nodes) == expected, nodes.count >= 6 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await wildcard.stop()
        await bound.stop()
        await stranger.stop()
        await listener.stop()
        let nodes = heard.withLock { $0 }
        #expect(Set(nodes) == expected, "\(nodes)")
        #expect(nodes.count >= 6)
    }

    @Test func announcementsGoToIPAddressesOnly() async throws {
        await #expect(throws: NodeDiscoveryError.notAnIPAddress("nodes.example")) {
            _ = try await NodeAnnouncer(
                announcing: Endpoint(host: "0.0.0.0", port: 1), to: NodeDiscovery(address: Endpoint(host: "nodes.example", port: 60000)),
                credentials: credentials, logger: Logger(label: "test"))
        }
    }

    @Test func aNodeGivenUpJoinsAgainWhenHeardAgain() async throws {
        let system = FleetActorSystem(configuration: .init(credentials: credentials))
        let queue = PortableJobQueue()
        let links = NodeLinks(system: system, queue: queue, canDoWithout: true)
        // Nobody listens there: the link gives up after three refused attempts, a second apart.
        let nowhere = Endpoint(host: "127.0.0.1", port: try unusedLoopbackPort(SOCK_STREAM))
        // Heard, not named: a node that is never reached gets no row in the stats.
        let phantom = Endpoint(host: "127.0.0.2", port: nowhere.port)
        links.add(nowhere)
        links.add(nowhere)   // Heard again while linked: still one link.
        links.add(phantom, discovered: true)
        #expect(links.linked == [nowhere, phantom])
        for _ in 0..<200 where !links.linked.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(links.linked.isEmpty)
        #expect(links.joined == [nowhere.description])
        #expect(!queue.isClosed)   // Discovery may find more nodes: the jobs keep waiting.
        links.add(nowhere)
        #expect(links.linked == [nowhere])
        #expect(links.joined == [nowhere.description])
        queue.close(failing: JobError.serverShutDown)
        await links.close()
        #expect(links.linked.isEmpty)
        links.add(nowhere)   // Closed: nothing more is linked.
        #expect(links.linked.isEmpty)
        await system.shutdown()
    }
}
