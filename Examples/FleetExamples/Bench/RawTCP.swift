import Foundation

/// Plain TCP sockets on loopback: the baseline a remote call is measured against.
///
/// Reads block, unless given a spin: then a read first polls the socket (`recv` with
/// `MSG_DONTWAIT`) for up to that long, as Fleet's busy polling does, and blocks only after it.
/// The spinning round trip is the fastest plain TCP gets on a machine where waking a thread
/// costs tens of microseconds (a VM).
enum RawTCP {
    /// Starts a thread that accepts connections on a free loopback port and echoes each
    /// `size`-byte message back (polling for each for up to `spin` first); returns the port.
    static func startEchoServer(size: Int, spin: Duration = .zero) throws -> Int {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EIO) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 16) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else { close(listener); throw POSIXError(.EADDRINUSE) }
        let thread = Thread {
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                setNoDelay(connection)
                let worker = Thread {
                    var buffer = [UInt8](repeating: 0, count: size)
                    while readFully(connection, &buffer, spin: spin), writeFully(connection, buffer) {}
                    close(connection)
                }
                worker.start()
            }
        }
        thread.start()
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A client connection to an echo server; use it from one dedicated thread.
    final class Client: @unchecked Sendable {
        // @unchecked: the descriptor is used from one thread at a time (the benchmark hands the
        // client to one dedicated thread per round and waits for it).
        private let fd: Int32
        private var message: [UInt8]
        private let spin: Duration

        /// A connection to the echo server on `port`, for `size`-byte messages, whose reads
        /// poll for up to `spin` before they block.
        init(port: Int, size: Int, spin: Duration = .zero) throws {
            let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard socketFD >= 0 else { throw POSIXError(.EIO) }
            var address = RawTCP.loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(socketFD); throw POSIXError(.ECONNREFUSED) }
            RawTCP.setNoDelay(socketFD)
            fd = socketFD
            message = [UInt8](repeating: 7, count: size)
            self.spin = spin
        }

        deinit { close(fd) }

        /// Times `count` round trips; returns the seconds of each.
        func roundTrips(count: Int) throws -> [Double] {
            let clock = ContinuousClock()
            var samples: [Double] = []
            samples.reserveCapacity(count)
            for _ in 0..<count {
                let start = clock.now
                guard RawTCP.writeFully(fd, message), RawTCP.readFully(fd, &message, spin: spin) else { throw POSIXError(.EPIPE) }
                samples.append((clock.now - start).inSeconds)
            }
            return samples
        }
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Reads `buffer.count` bytes, polling for each read for up to `spin` before blocking.
    static func readFully(_ fd: Int32, _ buffer: inout [UInt8], spin: Duration = .zero) -> Bool {
        var offset = 0
        let clock = ContinuousClock()
        var deadline: ContinuousClock.Instant?
        var turns = 0
        var polling = spin > .zero
        while offset < buffer.count {
            let n = buffer.withUnsafeMutableBytes {
                recv(fd, $0.baseAddress! + offset, $0.count - offset, polling ? Int32(MSG_DONTWAIT) : 0)
            }
            if n < 0, polling, errno == EAGAIN || errno == EWOULDBLOCK {
                // The clock is read every 64 turns, the deadline set at the first of them.
                turns &+= 1
                if turns & 63 == 0 {
                    if let deadline { polling = clock.now < deadline } else { deadline = clock.now + spin }
                }
                continue
            }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    static func writeFully(_ fd: Int32, _ buffer: [UInt8]) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }
}
