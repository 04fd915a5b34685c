@testable import FleetCooperative
import NIOCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("CooperativeLoop: sockets and descriptors")
struct SocketTests {
    @Test func tcpRoundTripKeepsDataIntact() async throws {
        try await onLoop { loop in
            let (server, client, listener) = try await connectedPair(loop)
            defer { server.close(); client.close(); listener.close() }
            #expect(server.remoteAddress?.port == client.localAddress?.port)
            try await client.send("ping")
            #expect(try await recvExactly(server, 4) == Array("ping".utf8))
            try await server.send([1, 2, 3], timeout: .seconds(5))
            #expect(try await client.recv(max: 10, timeout: .seconds(5)) == [1, 2, 3])
            try client.shutdownWrite()
            #expect(try await server.recv(max: 10).isEmpty)  // end of file
        }
    }

    @Test func largeSendsCompleteWhileThePeerReads() async throws {
        let size = 4 << 20  // far beyond the loopback socket buffers
        let payload = pseudoRandomBytes(size)
        let received = try await onLoop { loop -> [UInt8] in
            let (server, client, listener) = try await connectedPair(loop)
            defer { server.close(); client.close(); listener.close() }
            let reader = loop.add { try await recvExactly(server, size) }
            try await client.send(payload, timeout: .seconds(20))
            return try await reader.value
        }
        #expect(received.count == size)
        #expect(received == payload)
    }

    @Test func recvAndAcceptTimeOutAndTheSocketsStayUsable() async throws {
        try await onLoop { loop in
            let (server, client, listener) = try await connectedPair(loop)
            defer { server.close(); client.close(); listener.close() }
            let error1 = await caught {
                _ = try await server.recv(max: 10, timeout: .milliseconds(20))
            }
            #expect(error1 as? Timeout == Timeout(operation: "recv", after: .milliseconds(20)))
            let error2 = await caught { _ = try await listener.accept(timeout: .milliseconds(20)) }
            #expect(error2 is Timeout)
            try await client.send("after")
            #expect(try await recvExactly(server, 5) == Array("after".utf8))
            // And accept works again after its timeout.
            let second = try await loop.connect(host: "127.0.0.1", port: listener.localPort, timeout: .seconds(5))
            let accepted = try await listener.accept(timeout: .seconds(5))
            second.close()
            #expect(try await accepted.recv(max: 1, timeout: .seconds(5)).isEmpty)
            accepted.close()
        }
    }

    @Test func sendTimesOutWhenThePeerDoesNotRead() async throws {
        try await onLoop { loop in
            let (server, client, listener) = try await connectedPair(loop)
            defer { server.close(); client.close(); listener.close() }
            let big = [UInt8](repeating: 1, count: 64 << 20)
            let error3 = await caught { try await client.send(big, timeout: .milliseconds(100)) }
            #expect(error3 is Timeout)
        }
    }

    @Test func connectFailuresAreTypedErrors() async throws {
        try await onLoop { loop in
            // A port with nobody listening: bind one, note it, close it.
            let probe = try loop.listen(port: 0)
            let port = probe.localPort
            probe.close()
            let error4 = await caught {
                _ = try await loop.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
            }
            #expect(error4 as? SocketError == SocketError(operation: "connect", errno: ECONNREFUSED))
            let error5 = await caught { _ = try await loop.connect(host: "not an address", port: 1) }
            #expect(error5 is SocketError)
            #expect(throws: SocketError.self) { _ = try loop.listen(port: 70_000) }
        }
    }

    @Test func connectTimesOutWhenTheBacklogIsFull() async throws {
        let timedOut = try await onLoop { loop -> Bool in
            // Nobody accepts: once the backlog is full, Linux drops further SYNs and the next
            // connect waits until its timeout.
            let listener = try loop.listen(port: 0, backlog: 1)
            defer { listener.close() }
            var opened: [TCPConnection] = []
            defer { opened.forEach { $0.close() } }
            for _ in 0..<16 {
                do {
                    opened.append(try await loop.connect(host: "127.0.0.1", port: listener.localPort, timeout: .milliseconds(200)))
                } catch let error as Timeout {
                    #expect(error.operation == "connect")
                    return true
                }
            }
            return false
        }
        #expect(timedOut)
    }

    @Test func writableTimesOutOnAFullPipe() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd); close(writeEnd) }
        _ = fcntl(writeEnd, F_SETFL, O_NONBLOCK)
        var chunk = [UInt8](repeating: 1, count: 4096)
        while write(writeEnd, &chunk, chunk.count) > 0 {}  // fill it
        try await onLoop { loop in
            let error = await caught { try await loop.writable(writeEnd, timeout: .milliseconds(20)) }
            #expect(error as? Timeout == Timeout(operation: "writable", after: .milliseconds(20)))
            // Drain some, and it is writable again.
            var sink = [UInt8](repeating: 0, count: 65536)
            _ = read(readEnd, &sink, sink.count)
            try await loop.writable(writeEnd, timeout: .seconds(5))
        }
    }

    @Test func udpDatagramsAndTimeouts() async throws {
        try await onLoop { loop in
            let a = try loop.udp()
            let b = try loop.udp()
            defer { a.close(); b.close() }
            let error6 = await caught { _ = try await a.recvfrom(max: 100, timeout: .milliseconds(20)) }
            #expect(error6 is Timeout)
            let target = try SocketAddress(ipAddress: "127.0.0.1", port: a.localPort)
            try await b.sendto([9, 8, 7], to: target)
            try await b.sendto(Array("second".utf8), to: target, timeout: .seconds(1))
            let (first, sender) = try await a.recvfrom(max: 100, timeout: .seconds(5))
            #expect(first == [9, 8, 7])
            #expect(sender.port == b.localPort)
            let (second, _) = try await a.recvfrom(max: 3, timeout: .seconds(5))
            #expect(second == Array("sec".utf8))  // cut to max
        }
    }

    @Test func readableAndWritableOnAPipe() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd); close(writeEnd) }
        _ = fcntl(readEnd, F_SETFL, O_NONBLOCK)
        let got = try await onLoop { loop -> [UInt8] in
            try await loop.writable(writeEnd, timeout: .seconds(5))
            let error7 = await caught {
                try await loop.readable(readEnd, timeout: .milliseconds(20))
            }
            #expect(error7 as? Timeout == Timeout(operation: "readable", after: .milliseconds(20)))
            let writer = loop.add {
                try await loop.sleep(for: .milliseconds(10))
                var byte: UInt8 = 42
                _ = write(writeEnd, &byte, 1)
            }
            try await loop.readable(readEnd)  // no timeout: waits for the writer task
            var byte: UInt8 = 0
            #expect(read(readEnd, &byte, 1) == 1)
            try await writer.value
            // A socket of the loop waits by itself; asking for its descriptor is an error.
            let listener = try loop.listen(port: 0)
            let error8 = await caught { try await loop.readable(listener.core.fd, timeout: .milliseconds(1)) }
            #expect(error8 is SocketError)
            listener.close()
            return [byte]
        }
        #expect(got == [42])
    }

    @Test func cancellingATaskClosesTheSocketItWaitsOn() async throws {
        try await onLoop { loop in
            let (server, client, listener) = try await connectedPair(loop)
            defer { client.close(); listener.close() }
            let waiter = loop.add { _ = try await server.recv(max: 10) }
            try await loop.sleep(for: .milliseconds(10))
            waiter.cancel()
            let error9 = await caught { try await waiter.value }
            #expect(error9 is CancellationError)
            #expect(server.isClosed)
            #expect(try await client.recv(max: 10, timeout: .seconds(5)).isEmpty)  // the peer sees the close
            let error10 = await caught { _ = try await server.recv(max: 1) }
            #expect(error10 as? SocketError == SocketError.closed("recv"))

            // The same for a listener waiting in accept.
            let acceptor = loop.add { _ = try await listener.accept() }
            try await loop.sleep(for: .milliseconds(10))
            acceptor.cancel()
            let error11 = await caught { try await acceptor.value }
            #expect(error11 is CancellationError)
            #expect(listener.isClosed)
        }
    }

    @Test func cancellingFromAnotherThreadClosesTheSocketALoopTaskWaitsOn() async throws {
        try await onLoop { loop in
            let (server, client, listener) = try await connectedPair(loop)
            defer { client.close(); listener.close() }
            let waiter = loop.add { _ = try await server.recv(max: 10) }
            try await loop.sleep(for: .milliseconds(10))
            await Task.detached { waiter.cancel() }.value
            let error = await caught { try await waiter.value }
            #expect(error is CancellationError)
            #expect(server.isClosed)
            // A wait that starts after the cancellation ends at once.
            let late = loop.add {
                try await loop.sleep(for: .milliseconds(20))
                try await loop.sleep(for: .seconds(30))
            }
            late.cancel()
            let lateError = await caught { try await late.value }
            #expect(lateError is CancellationError)
        }
    }

    /// Children made with Swift's own structured concurrency inherit a loop task's task-locals,
    /// but are cancelled on their own: each of their waits watches for its own cancellation.
    @Test func cancellingAChildTaskAloneEndsTheWaitItIsIn() async throws {
        try await onLoop { loop in
            let inGroup = WaitOutcome()
            let error = await caught {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await receiveUntilCancelled(loop, inGroup) }
                    try await inGroup.started(on: loop)
                    group.cancelAll()
                    try await group.next()
                }
            }
            #expect(error is CancellationError)
            #expect(inGroup.result == .init(cancelled: true, closed: true))

            // An `async let` left without being awaited is cancelled alone, too.
            let inAsyncLet = WaitOutcome()
            do {
                async let _: Void = receiveUntilCancelled(loop, inAsyncLet)
                try await inAsyncLet.started(on: loop)
            }
            #expect(inAsyncLet.result == .init(cancelled: true, closed: true))

            // And an unstructured task, which inherits task-locals as well.
            let (server, client, listener) = try await connectedPair(loop)
            defer { client.close(); listener.close() }
            let task = Task {
                _ = loop
                _ = try await server.recv(max: 10, timeout: .seconds(10))
            }
            try await loop.sleep(for: .milliseconds(10))
            task.cancel()
            let taskError = await caught { try await task.value }
            #expect(taskError is CancellationError)
            #expect(server.isClosed)
        }
    }

    @Test func closingASocketEndsItsWaitWithAnError() async throws {
        try await onLoop { loop in
            let (server, client, listener) = try await connectedPair(loop)
            defer { client.close(); listener.close() }
            let waiter = loop.add { _ = try await server.recv(max: 10) }
            try await loop.sleep(for: .milliseconds(10))
            server.close()
            let error12 = await caught { try await waiter.value }
            #expect(error12 as? SocketError == SocketError.closed("wait"))
        }
    }

    @Test func resetsAndGarbageDoNotTakeDownTheLoopOrOtherConnections() async throws {
        let (replies, failures) = try await onLoop { loop -> ([String], [String]) in
            // A line protocol: each line is a number, the answer is the number plus one; a line
            // that is not a number ends that connection (and only that one). Each handler
            // records how its connection ended.
            let listener = try loop.listen(port: 0)
            let failures = Log<String>()
            let server = loop.add {
                while true {
                    let connection: TCPConnection
                    do { connection = try await listener.accept() } catch let error as SocketError where error.isClosed { return }
                    loop.add {
                        defer { connection.close() }
                        do {
                            while true {
                                let request = try await connection.recv(max: 100)
                                if request.isEmpty { return }
                                guard let n = Int(String(decoding: request, as: UTF8.self)) else { throw Boom(code: 400) }
                                try await connection.send("\(n + 1)")
                            }
                        } catch let error as Boom {
                            failures.append("garbage \(error.code)")
                        } catch let error as SocketError {
                            failures.append(error.errno == ECONNRESET || error.errno == EPIPE ? "reset" : "\(error)")
                        }
                    }
                }
            }
            let good = try await loop.connect(host: "127.0.0.1", port: listener.localPort, timeout: .seconds(5))
            defer { good.close() }
            var replies: [String] = []
            replies.append(try await ask(good, 1))

            // A peer that resets the connection mid-request.
            let resetter = try await loop.connect(host: "127.0.0.1", port: listener.localPort, timeout: .seconds(5))
            try await resetter.send("12")
            var linger = linger(l_onoff: 1, l_linger: 0)
            setsockopt(resetter.descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
            resetter.close()  // RST
            replies.append(try await ask(good, 2))

            // A peer that sends garbage, and one that sends binary junk then stays silent.
            let garbage = try await loop.connect(host: "127.0.0.1", port: listener.localPort, timeout: .seconds(5))
            try await garbage.send([0xFF, 0x00, 0xFE, 0x41])
            #expect(try await garbage.recv(max: 10, timeout: .seconds(5)).isEmpty)  // the server hung up
            garbage.close()
            replies.append(try await ask(good, 3))

            listener.close()
            good.close()
            try await server.value
            // Let the handlers see their connections end.
            for _ in 0..<100 where failures.entries.count < 2 { try await loop.sleep(for: .milliseconds(5)) }
            return (replies, failures.entries.sorted())
        }
        #expect(replies == ["2", "3", "4"])
        #expect(failures == ["garbage 400", "reset"])
    }

    @Test func oneThreadServesManyConnectionsAtOnce() async throws {
        let total = try await onLoop { loop -> Int in
            let listener = try loop.listen(port: 0)
            let port = listener.localPort
            let server = loop.add {
                while true {
                    let connection: TCPConnection
                    do { connection = try await listener.accept() } catch let error as SocketError where error.isClosed { return }
                    loop.add {
                        defer { connection.close() }
                        var buffer = [UInt8](repeating: 0, count: 1024)
                        while true {
                            let count = try await connection.recv(into: &buffer)
                            if count == 0 { return }
                            try await connection.send(buffer[..<count])
                        }
                    }
                }
            }
            var clients: [CooperativeTask<Int>] = []
            for index in 0..<100 {
                clients.append(loop.add {
                    let connection = try await loop.connect(host: "127.0.0.1", port: port, timeout: .seconds(10))
                    defer { connection.close() }
                    var echoed = 0
                    for round in 0..<20 {
                        let message = Array("client \(index) round \(round)".utf8)
                        try await connection.send(message)
                        let reply = try await recvExactly(connection, message.count)
                        #expect(reply == message)
                        echoed += 1
                    }
                    return echoed
                })
            }
            var total = 0
            for client in clients { total += try await client.value }
            listener.close()
            try await server.value
            return total
        }
        #expect(total == 100 * 20)
    }
}

/// Sends `n` as text and returns the reply.
private func ask(_ connection: TCPConnection, _ n: Int, isolation: isolated (any Actor)? = #isolation) async throws -> String {
    try await connection.send("\(n)")
    return String(decoding: try await connection.recv(max: 100, timeout: .seconds(5)), as: UTF8.self)
}

/// `count` bytes of xorshift noise.
private func pseudoRandomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var x: UInt32 = 2_463_534_242
    for index in bytes.indices {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5
        bytes[index] = UInt8(truncatingIfNeeded: x)
    }
    return bytes
}

/// How a wait in a child task ended, for the test that cancels children alone.
final class WaitOutcome: Sendable {
    struct Result: Equatable {
        var cancelled: Bool
        var closed: Bool
    }

    private let state = Mutex<(waiting: Bool, result: Result?)>((false, nil))

    var result: Result? { state.withLock { $0.result } }

    func waiting() { state.withLock { $0.waiting = true } }

    func ended(_ result: Result) { state.withLock { $0.result = result } }

    /// Returns once the child waits (bounded: about 10 s).
    func started(on loop: isolated CooperativeLoop) async throws {
        for _ in 0..<1_000 where !state.withLock({ $0.waiting }) {
            try await loop.sleep(for: .milliseconds(10))
        }
        try await loop.sleep(for: .milliseconds(10))
    }
}

/// Connects a pair on `loop` and waits to receive on one end until the task is cancelled;
/// records whether the wait ended by cancellation and closed the socket.
func receiveUntilCancelled(_ loop: isolated CooperativeLoop, _ outcome: WaitOutcome) async throws {
    let (server, client, listener) = try await connectedPair(loop)
    defer { client.close(); listener.close() }
    outcome.waiting()
    do {
        // Bounded: without cancellation the wait would end here, with `Timeout`, after 10 s.
        _ = try await server.recv(max: 10, timeout: .seconds(10))
        outcome.ended(.init(cancelled: false, closed: server.isClosed))
    } catch {
        outcome.ended(.init(cancelled: error is CancellationError, closed: server.isClosed))
        throw error
    }
}
