import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import FleetWire

/// Records log messages so tests can check what a server logged.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }

    func record(_ line: String) { lines.withLock { $0.append(line) } }

    func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { _ in RecordingHandler(recorder: self) }
    }

    struct RecordingHandler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            recorder.record("\(event.level) \(event.message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        }
    }
}

struct Timeout: Error {}

/// Runs `body`, failing with ``Timeout`` if it takes longer than `seconds`.
func withDeadline<T: Sendable>(_ seconds: Double = 10, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw Timeout()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

func secret(_ text: String) throws -> Credentials { .secret(try Secret(Array(text.utf8))) }

func configuration(_ credentials: Credentials, logs: LogRecorder = LogRecorder(), name: String = "test") -> WireConfiguration {
    WireConfiguration(credentials: credentials, handshakeTimeout: .seconds(5), localPeer: .local(name: name), logger: logs.logger())
}

let loopback = Endpoint(host: "127.0.0.1", port: 0)

/// Starts an echo server on loopback, runs `body` with its endpoint, then stops it.
func withEchoServer<T: Sendable>(
    _ configuration: WireConfiguration,
    _ body: @escaping @Sendable (Endpoint) async throws -> T
) async throws -> T {
    let listener = try await WireListener.bind(to: loopback, configuration: configuration)
    let server = Task {
        try await listener.run { connection in
            for try await frame in connection.inbound { try await connection.send(frame) }
        }
    }
    do {
        let result = try await withDeadline { try await body(listener.localEndpoint) }
        await listener.close()
        server.cancel()
        _ = await server.result
        return result
    } catch {
        await listener.close()
        server.cancel()
        _ = await server.result
        throw error
    }
}

/// Sends `text` and returns the echoed text over a new authenticated connection.
func echo(_ text: String, to endpoint: Endpoint, _ configuration: WireConfiguration) async throws -> String {
    try await WireClient.withConnection(to: endpoint, configuration: configuration) { connection in
        try await connection.send(Frame(kind: .message, encoding: text))
        var frames = connection.inbound.makeAsyncIterator()
        guard let reply = try await frames.next() else { throw WireError.connectionClosed }
        return try reply.decode(String.self)
    }
}

/// A raw TCP connection to `endpoint`, optionally with Fleet's frame codec but no handshake: for
/// sending what a well-behaved client never would.
func withRawConnection<T: Sendable>(
    to endpoint: Endpoint,
    _ body: @escaping @Sendable (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> T
) async throws -> T {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: endpoint.host, port: endpoint.port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in try await body(inbound, outbound) }
}

func withRawFrameConnection<T: Sendable>(
    to endpoint: Endpoint,
    _ body: @escaping @Sendable (NIOAsyncChannelInboundStream<Frame>, NIOAsyncChannelOutboundWriter<Frame>) async throws -> T
) async throws -> T {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: endpoint.host, port: endpoint.port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    ByteToMessageHandler(FrameDecoder()), FrameEncoder(),
                ])
                return try NIOAsyncChannel<Frame, Frame>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in try await body(inbound, outbound) }
}

/// Reads every byte until the peer closes the connection.
func drain(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async throws -> ByteBuffer {
    var all = ByteBuffer()
    do {
        for try await var chunk in inbound { all.writeBuffer(&chunk) }
    } catch {
        // A reset also ends the connection; what arrived before it is what counts.
    }
    return all
}

func fixture(_ name: String) -> String {
    Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
}
