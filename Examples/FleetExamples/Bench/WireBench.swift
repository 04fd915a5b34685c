import FleetWire
import Foundation
import NIOCore

/// `fleet bench wire`: FleetWire's binary coder against Foundation's JSON on the same values,
/// bulk `[Double]` throughput, and frames per second through an authenticated loopback connection.
///
/// Figures (one per line, `metric<TAB>value<TAB>unit`, the format `Benchmarks/Peers/run` reads):
/// `encode_record_binary`, `decode_record_binary`, `encode_record_json`, `decode_record_json` (ops/s),
/// `record_bytes_binary`, `record_bytes_json` (bytes), `encode_doubles_1m`, `decode_doubles_1m`
/// (MB/s of payload, 10^6 bytes), and `frames_loopback` (frames/s, echoed, 64-byte payloads).
public enum WireBench {
    /// Runs every measurement, handing each figure to `report` as soon as it is measured.
    public static func run(quick: Bool = false, report: (BenchFigure) -> Void) async throws {
        let minimum: Duration = quick ? .milliseconds(20) : .milliseconds(200)
        let repeats = quick ? 1 : 5
        let record = BenchRecord.sample
        let binary = BinaryEncoder(), binaryDecoder = BinaryDecoder()
        let json = JSONEncoder(), jsonDecoder = JSONDecoder()
        let recordBytes = try binary.encode(record)
        let recordJSON = try json.encode(record)
        guard try binaryDecoder.decode(BenchRecord.self, from: recordBytes) == record else {
            throw BenchError.roundTripMismatch("binary record")
        }
        report(BenchFigure("record_bytes_binary", Double(recordBytes.count), "bytes"))
        report(BenchFigure("record_bytes_json", Double(recordJSON.count), "bytes"))

        var buffer = ByteBufferAllocator().buffer(capacity: 2048)
        func opsPerSecond(_ body: () throws -> Void) rethrows -> Double {
            1 / (try medianSecondsPerCall(minimumTime: minimum, repeats: repeats, body))
        }
        report(BenchFigure("encode_record_binary", try opsPerSecond {
            buffer.clear()
            try binary.encode(record, into: &buffer)
        }, "ops/s"))
        report(BenchFigure("decode_record_binary", try opsPerSecond {
            _ = try binaryDecoder.decode(BenchRecord.self, from: recordBytes)
        }, "ops/s"))
        report(BenchFigure("encode_record_json", try opsPerSecond { _ = try json.encode(record) }, "ops/s"))
        report(BenchFigure("decode_record_json", try opsPerSecond {
            _ = try jsonDecoder.decode(BenchRecord.self, from: recordJSON)
        }, "ops/s"))

        let doubles = BenchRecord.doubles
        let megabytes = Double(doubles.count * 8) / 1e6
        var bulk = ByteBufferAllocator().buffer(capacity: doubles.count * 8 + 16)
        report(BenchFigure("encode_doubles_1m", megabytes / (try medianSecondsPerCall(minimumTime: minimum, repeats: repeats) {
            bulk.clear()
            try binary.encode(doubles, into: &bulk)
        }), "MB/s"))
        guard try binaryDecoder.decode([Double].self, from: bulk) == doubles else {
            throw BenchError.roundTripMismatch("[Double]")
        }
        report(BenchFigure("decode_doubles_1m", megabytes / (try medianSecondsPerCall(minimumTime: minimum, repeats: repeats) {
            _ = try binaryDecoder.decode([Double].self, from: bulk)
        }), "MB/s"))

        report(BenchFigure("frames_loopback", try await framesPerSecond(count: quick ? 2_000 : 100_000), "frames/s"))
    }

    /// Echoes `count` 64-byte frames through a loopback connection, with up to 256 in flight,
    /// and returns frames per second (each frame counted once, though it crosses twice).
    static func framesPerSecond(count: Int) async throws -> Double {
        let configuration = WireConfiguration(credentials: .insecure)
        let listener = try await WireListener.bind(to: Endpoint(host: "127.0.0.1", port: 0), configuration: configuration)
        let server = Task {
            try await listener.run { connection in
                for try await frame in connection.inbound { try await connection.send(frame) }
            }
        }
        defer { server.cancel() }
        let frame = Frame(kind: .message, payload: ByteBuffer(repeating: 7, count: 64))
        let window = 256
        let elapsed = try await WireClient.withConnection(to: listener.localEndpoint, configuration: configuration) { connection in
            let clock = ContinuousClock()
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var received = 0
                    for try await _ in connection.inbound {
                        received += 1
                        if received == count { return }
                    }
                    throw WireError.connectionClosed
                }
                var sent = 0
                while sent < count {
                    let batch = min(window, count - sent)
                    try await connection.send(contentsOf: repeatElement(frame, count: batch))
                    sent += batch
                }
                try await group.waitForAll()
            }
            return clock.now - start
        }
        await listener.close()
        return Double(count) / elapsed.inSeconds
    }
}
