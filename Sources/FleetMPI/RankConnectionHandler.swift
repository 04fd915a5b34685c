import FleetWire
import NIOCore

/// The header of a ``Frame/Kind/rankMessage`` frame: the communicator context and the tag, then
/// the data. The source is the connection's peer, so a rank cannot pose as another.
enum RankMessageHeader {
    static let size = 12

    static func write(context: UInt64, tag: Int32, into buffer: inout ByteBuffer) {
        buffer.writeInteger(context, endianness: .little)
        buffer.writeInteger(tag, endianness: .little)
    }

    /// A message: the header, then `body`, written in one go, in a buffer that holds its
    /// frame's header too (for TCP).
    static func message(context: UInt64, tag: Int32, body: UnsafeRawBufferPointer) -> ByteBuffer {
        Frame.payloadBuffer(kind: .rankMessage, size: size + body.count) { payload in
            store(context: context, tag: tag, at: payload.baseAddress!)
            if let base = body.baseAddress, !body.isEmpty {
                (payload.baseAddress! + size).copyMemory(from: base, byteCount: body.count)
            }
        }
    }

    /// Runs `body` with the header's bytes, made on the stack: for writers that send a header
    /// and a body without joining them in a buffer first.
    static func withBytes<Result>(context: UInt64, tag: Int32, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        var bytes: (UInt64, UInt32) = (context.littleEndian, UInt32(bitPattern: tag).littleEndian)
        return withUnsafeBytes(of: &bytes) { body(UnsafeRawBufferPointer(rebasing: $0[..<size])) }
    }

    /// Stores the header at `address` (``size`` bytes).
    static func store(context: UInt64, tag: Int32, at address: UnsafeMutableRawPointer) {
        address.storeBytes(of: context.littleEndian, as: UInt64.self)
        address.storeBytes(of: UInt32(bitPattern: tag).littleEndian, toByteOffset: 8, as: UInt32.self)
    }

    /// The header at the start of `bytes`, when they hold one.
    static func read(from bytes: UnsafeRawBufferPointer) -> (context: UInt64, tag: Int32)? {
        guard bytes.count >= size else { return nil }
        return (UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self)),
                Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int32.self)))
    }

    static func read(from buffer: inout ByteBuffer) -> (context: UInt64, tag: Int32)? {
        guard let context = buffer.readInteger(endianness: .little, as: UInt64.self),
              let tag = buffer.readInteger(endianness: .little, as: Int32.self) else { return nil }
        return (context, tag)
    }
}

/// What happened on a connection to another rank.
enum RankLinkEvent: Sendable {
    /// The peer said goodbye: it sends nothing more.
    case goodbye(Int)
    /// The connection closed; the peer, when it had said who it is.
    case closed(Int?, afterGoodbye: Bool)
}

/// Sits after FleetWire's handlers on a connection to another rank: hands each message to the
/// ``Mailbox`` within the read that brought it in, learns who dialled from its hello, and
/// reports goodbyes and closed connections.
///
/// Once it has seen a frame (so the connection is authenticated) and knows the peer, it takes
/// the messages that follow straight from the frame decoder (``FrameSink``), past the pipeline's
/// hops; other frames still come through the pipeline, in order.
final class RankConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private let mailbox: Mailbox
    private let size: Int
    /// The peer's world rank: known when this side dialled, learned from the hello otherwise.
    private var peer: Int?
    private var saidGoodbye = false
    private let identified: (Int, any Channel) -> Bool
    private let event: (RankLinkEvent) -> Void
    private let sink: FrameSink?
    /// A receive that takes the peer's next message straight from the decoder, while
    /// ``receiveDirectly(context:tag:take:polling:)`` runs.
    private var direct: DirectReceive?
    /// The tag of the message the direct receive took.
    private var directlyTaken: Int32?
    /// Whether the peer sent something no rank sends: the connection is closing, and nothing
    /// more from it is delivered (frames decoded in the same read included).
    private var broken = false

    private struct DirectReceive {
        let context: UInt64
        let tag: Int32?
        let take: (UnsafeRawBufferPointer) -> Bool
    }

    /// - Parameters:
    ///   - peer: the rank dialled, or `nil` on an accepted connection.
    ///   - identified: an accepted connection's peer said who it is; returns `false` to refuse it
    ///     (a rank that is already connected, or no rank of this job).
    ///   - event: the peer said goodbye, or the connection closed.
    ///   - sink: the connection's frame sink (``WirePipeline/configure(_:role:configuration:tlsContext:sink:)``).
    init(
        mailbox: Mailbox, size: Int, peer: Int?, sink: FrameSink? = nil,
        identified: @escaping (Int, any Channel) -> Bool, event: @escaping (RankLinkEvent) -> Void
    ) {
        self.sink = sink
        self.mailbox = mailbox
        self.size = size
        self.peer = peer
        self.identified = identified
        self.event = event
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else { return }
        let frame = unwrapInboundIn(data)
        defer { takeMessagesFromTheDecoder() }
        switch frame.kind {
        case .rankMessage:
            guard take(frame) else {
                return breakConnection(context, .malformedPayload(.rankMessage, peer == nil ? "message before hello" : "short header"))
            }
        case .message where peer == nil:
            guard let hello = try? frame.decode(RankHello.self), (0..<size).contains(hello.rank),
                  identified(hello.rank, context.channel) else {
                return breakConnection(context, .malformedPayload(.message, "not a rank of this job, or one already connected"))
            }
            peer = hello.rank
        case .goodbye:
            saidGoodbye = true
            if let peer { event(.goodbye(peer)) }
        default:
            breakConnection(context, .malformedPayload(frame.kind, "unexpected between ranks"))
        }
    }

    /// The peer sent something no rank sends: from now on nothing of it is delivered, the job
    /// fails with the error, naming the peer (when known: else the connection closing says who
    /// went), and the connection closes.
    private func breakConnection(_ context: ChannelHandlerContext, _ error: WireError) {
        broken = true
        sink?.take = nil
        if let peer { mailbox.fail(.malformedMessage(from: peer, "\(error)")) }
        context.close(promise: nil)
    }

    /// Delivers a message from the peer to the direct receive, when one waits and takes it, or
    /// to the mailbox; `false` for another frame, a message before the hello, or one too short
    /// for its header.
    private func take(_ frame: Frame) -> Bool {
        guard frame.kind == .rankMessage, let peer else { return false }
        var payload = frame.payload
        guard let header = RankMessageHeader.read(from: &payload) else { return false }
        if let receive = direct {
            // The peer's next message ends the direct receive, taken or not: one it does not
            // match, or declines, goes to the mailbox, where the usual way finds it.
            direct = nil
            if receive.context == header.context, receive.tag == nil || receive.tag == header.tag,
               payload.withUnsafeReadableBytes(receive.take) {
                directlyTaken = header.tag
                return true
            }
        }
        mailbox.deliver(RankMessage(context: header.context, source: peer, tag: header.tag, data: payload))
        return true
    }

    /// Receives the peer's next message past the mailbox, when it is of `context` and `tag` (or
    /// any tag) and `take` accepts its body (valid during the call only): `polling` reads the
    /// socket until the condition it gets holds (the message came) or it gives up. The
    /// ``PolledLinks/receiveDirectly(from:context:tag:giveUp:take:)`` contract: call only when
    /// nothing in the mailbox could take the message first; `nil` when the next message is
    /// another (it is in the mailbox then), does not come in time, or is declined.
    ///
    /// - Returns: the message's tag.
    func receiveDirectly(
        context: UInt64, tag: Int32?, take: (UnsafeRawBufferPointer) -> Bool, polling: (() -> Bool) -> Void
    ) -> Int32? {
        // Only once the decoder hands messages here.
        guard sink?.take != nil, direct == nil else { return nil }
        return withoutActuallyEscaping(take) { take in
            direct = DirectReceive(context: context, tag: tag, take: take)
            directlyTaken = nil
            defer { direct = nil }
            polling { self.direct == nil }
            return directlyTaken
        }
    }

    /// Has the decoder hand messages to ``take(_:)`` from now on, once the peer is known (this
    /// runs only for frames of an authenticated connection).
    private func takeMessagesFromTheDecoder() {
        guard let sink, sink.take == nil, peer != nil, !broken else { return }
        sink.take = { frame in self.take(frame) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The sink's closure holds this handler.
        sink?.take = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        event(.closed(peer, afterGoodbye: saidGoodbye))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
