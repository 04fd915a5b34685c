// FleetCooperative benchmarks: the cooperative loop's scheduler, its queue, its sockets and
// `offload`, each measured on a fresh `CooperativeLoop` (one thread, its own epoll reactor).
//
//   cd Benchmarks && swift package benchmark --target FleetCooperativeBenchmarks
//
// Every iteration is one whole `CooperativeLoop.run { }` session of 1,000 operations
// (`scalingFactor: .kilo`: figures read per operation), so they include a small share of the
// loop's start and stop, and of connecting for the echo.

import Benchmark
import FleetCooperative

/// Two tasks taking turns through `yield`: each switch is one task yielding and the other
/// resuming, the loop's scheduler round trip (the target: under 1 µs).
func yieldPingPong(_ switches: Int) async throws {
    try await CooperativeLoop.run { loop in
        let other = loop.add {
            for _ in 0..<(switches / 2) { await loop.yield() }
        }
        for _ in 0..<(switches / 2) { await loop.yield() }
        try await other.value
    }
}

/// A producer and a consumer through a bounded queue of 16: puts that wait, gets that wait.
func queueHandOff(_ items: Int) async throws -> Int {
    try await CooperativeLoop.run { loop in
        let queue = CooperativeQueue<Int>(capacity: 16, loop: loop)
        let producer = loop.add {
            for item in 0..<items { try await queue.put(item) }
        }
        var sum = 0
        for _ in 0..<items { sum &+= try await queue.get() }
        try await producer.value
        return sum
    }
}

/// 64-byte round trips between a client task and an echo task on the same loop, over
/// loopback TCP: each one a send, a readiness wait and a receive on both sides.
func echoRoundTrips(_ count: Int) async throws {
    try await CooperativeLoop.run { loop in
        let listener = try loop.listen(port: 0)
        defer { listener.close() }
        let server = loop.add {
            let connection = try await listener.accept(timeout: .seconds(10))
            defer { connection.close() }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let received = try await connection.recv(into: &buffer, timeout: .seconds(10))
                if received == 0 { return }
                try await connection.send(buffer[..<received])
            }
        }
        let client = try await loop.connect(host: "127.0.0.1", port: listener.localPort, timeout: .seconds(10))
        let message = [UInt8](repeating: 0x2a, count: 64)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<count {
            try await client.send(message)
            var got = 0
            while got < message.count {
                let received = try await client.recv(into: &buffer, timeout: .seconds(10))
                guard received > 0 else { throw SocketError.closed("recv") }
                got += received
            }
        }
        try client.shutdownWrite()
        try await server.value
        client.close()
    }
}

/// `offload` of a trivial closure: the hop to the thread pool and back to the loop.
func offloads(_ count: Int) async throws -> Int {
    try await CooperativeLoop.run { loop in
        var sum = 0
        for i in 0..<count { sum &+= try await loop.offload { i &* 2 } }
        return sum
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    Benchmark("loop.yield.switch") { benchmark in
        try await yieldPingPong(benchmark.scaledIterations.count)
    }

    Benchmark("loop.queue.handOff") { benchmark in
        blackHole(try await queueHandOff(benchmark.scaledIterations.count))
    }

    Benchmark("loop.tcp.echo.64B") { benchmark in
        try await echoRoundTrips(benchmark.scaledIterations.count)
    }

    Benchmark("loop.offload.trivial") { benchmark in
        blackHole(try await offloads(benchmark.scaledIterations.count))
    }
}
