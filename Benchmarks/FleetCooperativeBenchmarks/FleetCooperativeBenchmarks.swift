// FleetCooperative benchmarks: the single-threaded loop's own costs — a task's yield and resume,
// a hand-off through a bounded queue, a 64-byte round trip over loopback TCP with both ends on
// the loop, and an offload to the thread pool and back.
//
//   cd Benchmarks && swift package benchmark --target FleetCooperativeBenchmarks
//
// Each iteration runs 1,000 operations on one loop (`scalingFactor: .kilo`: wall clock per
// operation, throughput in K ops/s). The echo server's requests/s under 50 connections, beside
// a C epoll server and asyncio, is `fleet bench echo`'s and the peers harness's.

import Benchmark
import FleetCooperative

/// Operations per iteration.
let operationsPerIteration = 1_000

/// Holds a benchmark's loop between setup, iterations and teardown.
///
/// `@unchecked Sendable`: package-benchmark runs a benchmark's setup, its iterations and its
/// teardown one after another, never at once, so `loop` is never accessed concurrently.
final class LoopBox: @unchecked Sendable {
    var loop: CooperativeLoop?
}

/// A benchmark that runs `body` as a task of one loop (made in setup, released in teardown)
/// per iteration, with the number of operations to do.
func loopBenchmark(_ name: String, _ body: @Sendable @escaping (isolated CooperativeLoop, Int) async throws -> Void) {
    let box = LoopBox()
    Benchmark(
        name,
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            warmupIterations: 2, scalingFactor: .kilo, maxDuration: .seconds(3), maxIterations: 10_000),
        closure: { benchmark in
            guard let loop = box.loop else { return benchmark.error("loop missing") }
            let count = benchmark.scaledIterations.count
            do {
                await loop.add { loop in try await body(loop, count) }
                try await loop.run()
            } catch {
                benchmark.error("\(name) failed: \(error)")
            }
        },
        setup: { box.loop = CooperativeLoop() },
        teardown: { box.loop = nil }
    )
}

/// A benchmark's check failed.
struct Mismatch: Error {
    var what: String
}

let benchmarks: @Sendable () -> Void = {
    // A task yields and is resumed: the scheduler's switch (the target: under 1 µs).
    loopBenchmark("cooperative.yield") { loop, count in
        for _ in 0..<count { await loop.yield() }
    }

    // Two tasks hand values over through a queue of capacity 1: each put waits for the get.
    loopBenchmark("cooperative.queue.handoff") { loop, count in
        let queue = CooperativeQueue<Int>(capacity: 1, loop: loop)
        let consumer = loop.add { () async throws -> Int in
            var sum = 0
            for _ in 0..<count { sum += try await queue.get() }
            return sum
        }
        for value in 0..<count { try await queue.put(value) }
        guard try await consumer.value == count * (count - 1) / 2 else { throw Mismatch(what: "queue sum") }
    }

    // A 64-byte request and its echo over loopback TCP, client and server both tasks of the loop.
    loopBenchmark("cooperative.echo.loopback.64B") { loop, count in
        let listener = try loop.listen(port: 0)
        let server = loop.add {
            let connection = try await listener.accept()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let received = try await connection.recv(into: &buffer)
                if received == 0 { break }
                try await connection.send(buffer[..<received])
            }
            connection.close()
        }
        let client = try await loop.connect(host: "127.0.0.1", port: listener.localPort)
        let request = [UInt8](repeating: 7, count: 64)
        var reply = [UInt8](repeating: 0, count: 64)
        for _ in 0..<count {
            try await client.send(request)
            var received = 0
            while received < 64 {
                var chunk = [UInt8](repeating: 0, count: 64 - received)
                let count = try await client.recv(into: &chunk)
                guard count > 0 else { throw Mismatch(what: "the echo server closed") }
                reply.replaceSubrange(received..<(received + count), with: chunk[..<count])
                received += count
            }
        }
        guard reply == request else { throw Mismatch(what: "echo bytes") }
        try client.shutdownWrite()
        try await server.value
        client.close()
        listener.close()
    }

    // Trivial work offloaded to the thread pool, the task resumed on the loop with its result.
    loopBenchmark("cooperative.offload") { loop, count in
        var sum = 0
        for value in 0..<count { sum += try await loop.offload { value } }
        guard sum == count * (count - 1) / 2 else { throw Mismatch(what: "offload sum") }
    }
}
