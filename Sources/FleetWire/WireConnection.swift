import NIOCore

/// An authenticated Fleet connection, valid inside the closure that received it.
///
/// Read frames from ``inbound`` and send with ``send(_:)``. The connection closes when the closure
/// returns or throws.
///
/// ```swift
/// try await WireClient.withConnection(to: endpoint, configuration: configuration) { connection in
///     try await connection.send(Frame(kind: .message, encoding: "ping"))
///     for try await frame in connection.inbound { print(try frame.decode(String.self)); break }
/// }
/// ```
public struct WireConnection: Sendable {
    /// Who the peer said it is in the handshake (authenticated unless in insecure mode).
    public let peer: PeerInfo
    /// The peer's address, when known.
    public let remoteAddress: SocketAddress?
    /// The frames the peer sends, in order. A peer's error frame ends the sequence by throwing
    /// ``WireError/closedByPeer(reason:)``; a goodbye frame or a closed connection ends it.
    public let inbound: WireInbound
    let outbound: NIOAsyncChannelOutboundWriter<Frame>
    let maximumPayloadSize: Int

    /// Sends one frame; returns once it is handed to the connection (with backpressure).
    ///
    /// - Throws: ``WireError/frameTooLarge(size:limit:)`` for a payload over the connection's
    ///   limit (nothing is sent); an error when the connection is closed.
    public func send(_ frame: Frame) async throws {
        try check(frame)
        try await outbound.write(frame)
    }

    /// Sends several frames with a single flush; when one is over the size limit, none is sent.
    public func send(contentsOf frames: some Sequence<Frame>) async throws {
        for frame in frames { try check(frame) }
        try await outbound.write(contentsOf: frames)
    }

    private func check(_ frame: Frame) throws(WireError) {
        let size = frame.payload.readableBytes
        guard size <= maximumPayloadSize else {
            throw .frameTooLarge(size: size, limit: maximumPayloadSize)
        }
    }
}

/// The frames arriving on a ``WireConnection``.
public struct WireInbound: AsyncSequence, Sendable {
    public typealias Element = Frame
    let stream: NIOAsyncChannelInboundStream<Frame>

    /// Creates an iterator over the frames.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator())
    }

    /// Iterates the frames, turning the peer's error and goodbye frames into an error and the end.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: NIOAsyncChannelInboundStream<Frame>.AsyncIterator
        var finished = false

        /// The next frame, or `nil` at the end.
        public mutating func next() async throws -> Frame? {
            guard !finished, let frame = try await base.next() else { return nil }
            switch frame.kind {
            case .error:
                finished = true
                throw WireError.closedByPeer(reason: (try? frame.decode(String.self)) ?? "no reason given")
            case .goodbye:
                finished = true
                return nil
            default:
                return frame
            }
        }
    }
}
