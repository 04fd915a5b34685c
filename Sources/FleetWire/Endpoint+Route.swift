#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore
import NIOPosix

extension Endpoint {
    /// The host's IP address (resolved through the system's resolver when it is a name) and
    /// the address of this machine that traffic to it leaves from: what a peer there reaches
    /// this machine at. No packet is sent (a UDP socket is connected, and asked its address).
    /// Runs on NIO's thread pool: name lookups block.
    ///
    /// - Throws: `EndpointError` when the host has no address or no route leads there.
    package func route() async throws -> (remote: String, local: String) {
        let host = host, port = port
        return try await NIOThreadPool.singleton.runIfActive {
            let address: SocketAddress
            do {
                address = try SocketAddress.makeAddressResolvingHost(host, port: port)
            } catch {
                throw EndpointError("\(host):\(port)", "cannot resolve '\(host)': \(error)")
            }
            guard let remote = address.ipAddress else { throw EndpointError("\(host):\(port)", "'\(host)' has no IP address") }
            let fd = socket(Int32(address.protocol.rawValue), Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw EndpointError("\(host):\(port)", "no socket: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            guard address.withSockAddr({ Glibc.connect(fd, $0, socklen_t($1)) }) == 0 else {
                throw EndpointError("\(host):\(port)", "no route to \(remote): \(String(cString: strerror(errno)))")
            }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            guard named == 0, let local = Self.numericHost(of: &storage) else {
                throw EndpointError("\(host):\(port)", "cannot tell this machine's address toward \(remote)")
            }
            return (remote, local)
        }
    }

    /// The IP address in `storage`, as text (through NIO's `SocketAddress`).
    private static func numericHost(of storage: inout sockaddr_storage) -> String? {
        withUnsafeMutablePointer(to: &storage) { pointer in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "").ipAddress }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "").ipAddress }
            default: nil
            }
        }
    }
}
