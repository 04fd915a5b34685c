// FleetWire benchmarks: the binary Codable coder against Foundation's JSON coder, bulk
// `[Double]` throughput, and frames per second through a loopback connection.
//
//   cd Benchmarks && swift package benchmark --target FleetWireBenchmarks
//
// The record is `BenchRecord` (FleetExamples), the one behind `fleet bench wire`; the dict in
// `Peers/python/wire_peer.py` mirrors it, so every side of `Peers/run wire` measures the same thing.

import Benchmark
import FleetExamples
import FleetWire
import Foundation
import NIOCore

// MARK: - Fixtures

/// The ~1 KiB record every side of the comparison uses (defined once, in FleetExamples).
typealias Record = BenchRecord

/// 1,000,000 doubles: 8,000,000 bytes of payload. MB/s below means 10^6 payload bytes per second.
let doubles: [Double] = BenchRecord.doubles
let doublesPayloadBytes = doubles.count * MemoryLayout<Double>.size

/// Frames sent and echoed back per iteration of the loopback benchmark.
let framesPerIteration = 10_000

/// Benchmark configurations (a type, so they are not main-actor globals of this top-level file).
enum Configurations {
    /// 1,000 records encoded or decoded per iteration (`scalingFactor: .kilo`).
    static var record: Benchmark.Configuration {
        .init(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .kilo, maxDuration: .seconds(2))
    }

    /// One 8 MB encode or decode per iteration.
    static var bulk: Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .peakMemoryResident, megabytesPerSecond],
            warmupIterations: 1,
            maxDuration: .seconds(3),
            maxIterations: 50
        )
    }
}

/// Custom metric for the bulk benchmarks: payload megabytes per second.
let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)

/// Custom metric for the loopback benchmark: frames echoed per second.
let framesPerSecond = BenchmarkMetric.custom("frames/s", polarity: .prefersLarger, useScalingFactor: false)

/// Runs `body` once and reports its payload megabytes per second as `megabytesPerSecond`.
@inline(__always)
func measureMegabytes(_ benchmark: Benchmark, bytes: Int, _ body: () throws -> Void) rethrows {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let elapsed = start.duration(to: clock.now)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    benchmark.measurement(megabytesPerSecond, Int((Double(bytes) / 1e6 / seconds).rounded()))
}

// MARK: - Loopback fixture

/// An echo listener on 127.0.0.1 and one client connection to it, kept open across iterations.
///
/// `WireClient.withConnection` scopes the connection to a closure, so a client task holds it and
/// runs one round (send N frames pipelined, read N echoes back) per request from an iteration.
final class LoopbackEcho: Sendable {
    /// One iteration's work for the client task, resumed when the echoes are back.
    struct Round: Sendable {
        var count: Int
        var batched: Bool
        var done: CheckedContinuation<Void, any Error>
    }

    let listener: WireListener
    let server: Task<Void, any Error>
    let client: Task<Void, Never>
    let rounds: AsyncStream<Round>.Continuation
    let frame = Frame(kind: .message, payload: ByteBuffer(repeating: 0x5A, count: 64))

    init() async throws {
        let configuration = WireConfiguration(credentials: .insecure)
        let listener = try await WireListener.bind(
            to: Endpoint(host: "127.0.0.1", port: 0),
            configuration: configuration
        )
        self.listener = listener
        self.server = Task {
            try await listener.run { connection in
                for try await frame in connection.inbound {
                    try await connection.send(frame)
                }
            }
        }
        let (stream, rounds) = AsyncStream.makeStream(of: Round.self)
        self.rounds = rounds
        let frame = self.frame
        self.client = Task {
            do {
                try await WireClient.withConnection(to: listener.localEndpoint, configuration: configuration) {
                    connection in
                    var inbound = connection.inbound.makeAsyncIterator()
                    for await round in stream {
                        do {
                            try await Self.echo(round, frame: frame, over: connection, inbound: &inbound)
                            round.done.resume()
                        } catch {
                            round.done.resume(throwing: error)
                            throw error
                        }
                    }
                }
            } catch {
                for await round in stream {  // fail every later round instead of hanging it
                    round.done.resume(throwing: error)
                }
            }
        }
        try await roundTrip(count: 1)  // connected, authenticated, echoing
    }

    /// Sends `count` frames pipelined (one `send` each, or one batched `send(contentsOf:)`)
    /// and reads `count` echoes back.
    func roundTrip(count: Int, batched: Bool = false) async throws {
        try await withCheckedThrowingContinuation { done in
            rounds.yield(Round(count: count, batched: batched, done: done))
        }
    }

    private static func echo(
        _ round: Round,
        frame: Frame,
        over connection: WireConnection,
        inbound: inout WireInbound.AsyncIterator
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                if round.batched {
                    try await connection.send(contentsOf: repeatElement(frame, count: round.count))
                } else {
                    for _ in 0..<round.count {
                        try await connection.send(frame)
                    }
                }
            }
            for _ in 0..<round.count {
                guard let echoed = try await inbound.next() else {
                    throw LoopbackClosed()
                }
                blackHole(echoed)
            }
            try await group.waitForAll()
        }
    }

    /// Ends the client connection, then the listener.
    func close() async {
        rounds.finish()
        await client.value
        await listener.close()
        server.cancel()
        _ = await server.result
    }
}

/// The echo server closed the connection in the middle of a round.
struct LoopbackClosed: Error {}

/// Holds the loopback fixture between setup, iterations and teardown (run one at a time).
final class FixtureBox: @unchecked Sendable {
    var echo: LoopbackEcho?
}

/// A loopback benchmark: `framesPerIteration` frames out and back per iteration, as frames/s.
func loopbackBenchmark(_ name: String, batched: Bool) {
    let fixture = FixtureBox()
    Benchmark(
        name,
        configuration: .init(
            metrics: [.wallClock, .throughput, framesPerSecond],
            warmupIterations: 1,
            maxDuration: .seconds(3),
            maxIterations: 100
        ),
        closure: { benchmark in
            guard let echo = fixture.echo else {
                benchmark.error("loopback fixture missing")
                return
            }
            let clock = ContinuousClock()
            let start = clock.now
            do {
                try await echo.roundTrip(count: framesPerIteration, batched: batched)
            } catch {
                benchmark.error("loopback round trip failed: \(error)")
                return
            }
            let elapsed = start.duration(to: clock.now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            benchmark.measurement(framesPerSecond, Int((Double(framesPerIteration) / seconds).rounded()))
        },
        setup: {
            fixture.echo = try await LoopbackEcho()
        },
        teardown: {
            await fixture.echo?.close()
            fixture.echo = nil
        }
    )
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    let record = Record.sample

    // Record: FleetWire binary coder.
    Benchmark("Record encode (binary)", configuration: Configurations.record) { benchmark in
        let encoder = BinaryEncoder()
        for _ in benchmark.scaledIterations {
            blackHole(try encoder.encode(record))
        }
    }

    Benchmark("Record encode into ByteBuffer (binary)", configuration: Configurations.record) { benchmark in
        let encoder = BinaryEncoder()
        var buffer = ByteBuffer()
        for _ in benchmark.scaledIterations {
            buffer.clear()
            try encoder.encode(record, into: &buffer)
        }
        blackHole(buffer)
    }

    Benchmark(
        "Record decode (binary)",
        configuration: Configurations.record,
        closure: { benchmark, bytes in
            let decoder = BinaryDecoder()
            for _ in benchmark.scaledIterations {
                blackHole(try decoder.decode(Record.self, from: bytes))
            }
        },
        setup: { () -> [UInt8] in
            let bytes = try BinaryEncoder().encode(record)
            let decoded = try BinaryDecoder().decode(Record.self, from: bytes)
            precondition(decoded == record, "binary round trip")
            return bytes
        }
    )

    Benchmark(
        "Record decode from ByteBuffer (binary)",
        configuration: Configurations.record,
        closure: { benchmark, buffer in
            let decoder = BinaryDecoder()
            for _ in benchmark.scaledIterations {
                blackHole(try decoder.decode(Record.self, from: buffer))
            }
        },
        setup: { () -> ByteBuffer in
            var buffer = ByteBuffer()
            try BinaryEncoder().encode(record, into: &buffer)
            return buffer
        }
    )

    // Record: Foundation JSON, for comparison.
    Benchmark("Record encode (JSON)", configuration: Configurations.record) { benchmark in
        let encoder = JSONEncoder()
        for _ in benchmark.scaledIterations {
            blackHole(try encoder.encode(record))
        }
    }

    Benchmark(
        "Record decode (JSON)",
        configuration: Configurations.record,
        closure: { benchmark, data in
            let decoder = JSONDecoder()
            for _ in benchmark.scaledIterations {
                blackHole(try decoder.decode(Record.self, from: data))
            }
        },
        setup: { () -> Data in
            let data = try JSONEncoder().encode(record)
            let decoded = try JSONDecoder().decode(Record.self, from: data)
            precondition(decoded == record, "JSON round trip")
            return data
        }
    )

    // Bulk: 1M doubles (8 MB of payload) per iteration.
    Benchmark("[Double] 1M encode (binary)", configuration: Configurations.bulk) { benchmark in
        let encoder = BinaryEncoder()
        try measureMegabytes(benchmark, bytes: doublesPayloadBytes) {
            blackHole(try encoder.encode(doubles))
        }
    }

    Benchmark("[Double] 1M encode into ByteBuffer (binary)", configuration: Configurations.bulk) { benchmark in
        let encoder = BinaryEncoder()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(doublesPayloadBytes + 16)
        try measureMegabytes(benchmark, bytes: doublesPayloadBytes) {
            buffer.clear()  // reused, as `fleet bench wire` does: no fresh 8 MB allocation per call
            try encoder.encode(doubles, into: &buffer)
        }
        blackHole(buffer)
    }

    Benchmark(
        "[Double] 1M decode (binary)",
        configuration: Configurations.bulk,
        closure: { benchmark, bytes in
            let decoder = BinaryDecoder()
            try measureMegabytes(benchmark, bytes: doublesPayloadBytes) {
                blackHole(try decoder.decode([Double].self, from: bytes))
            }
        },
        setup: { () -> [UInt8] in
            let bytes = try BinaryEncoder().encode(doubles)
            let decoded = try BinaryDecoder().decode([Double].self, from: bytes)
            precondition(decoded == doubles, "bulk round trip")
            return bytes
        }
    )

    // Loopback: 10,000 small frames (64-byte payloads, as in `fleet bench wire`) through an echo
    // listener per iteration.
    loopbackBenchmark("Loopback echo 10k frames", batched: false)
    loopbackBenchmark("Loopback echo 10k frames (batched send)", batched: true)
}
