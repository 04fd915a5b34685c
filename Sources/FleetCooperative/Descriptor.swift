#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// System calls shared by the socket types.
enum Descriptor {
    /// A non-blocking, close-on-exec socket for `address`'s family.
    static func socket(for address: SocketAddress, type: Int32) throws(SocketError) -> Int32 {
        let family: Int32
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        case .unixDomainSocket: family = AF_UNIX
        }
        let fd = Glibc.socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: errno) }
        return fd
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32 = 1) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    static func bind(_ fd: Int32, to address: SocketAddress) throws(SocketError) {
        let result = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
        guard result == 0 else { throw SocketError(operation: "bind", errno: errno) }
    }

    /// The address bound to `fd` (`getsockname`) or of its peer (`getpeername`).
    static func address(of fd: Int32, peer: Bool = false) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard result == 0 else { return nil }
        return address(from: storage)
    }

    static func address(from storage: sockaddr_storage) -> SocketAddress? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in.self)) }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in6.self)) }
        default:
            return nil
        }
    }

    /// `SocketAddress(ipAddress:port:)`, with its error as a ``SocketError``.
    static func resolve(host: String, port: Int) throws(SocketError) -> SocketAddress {
        guard (0...65535).contains(port), let address = try? SocketAddress(ipAddress: host, port: port) else {
            throw SocketError(operation: "address \(host):\(port)", errno: EINVAL)
        }
        return address
    }
}
