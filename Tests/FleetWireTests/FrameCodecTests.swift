import NIOCore
import NIOEmbedded
import Testing

@testable import FleetWire

@Suite("FrameDecoder and FrameEncoder")
struct FrameCodecTests {
    private func makeChannel(limit: Int = Frame.defaultMaximumPayloadSize) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(FrameDecoder(maximumPayloadSize: limit)),
            FrameEncoder(maximumPayloadSize: limit),
        ])
        return channel
    }

    private func header(_ kind: UInt8, _ length: UInt32) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(kind)
        buffer.writeInteger(length)
        return buffer
    }

    @Test func framesRoundTripThroughTheCodec() throws {
        let channel = try makeChannel()
        let frames = [
            Frame(kind: .message, payload: ByteBuffer(string: "hello")),
            Frame(kind: .ping),
            try Frame(kind: .message, encoding: [Double](repeating: 1.25, count: 10_000)),  // > copy threshold
        ]
        for frame in frames { try channel.writeOutbound(frame) }
        var wire = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&chunk) }
        #expect(wire.readableBytes == frames.reduce(0) { $0 + Frame.headerSize + $1.payload.readableBytes })
        // Feed the bytes back one at a time: the decoder must reassemble each frame.
        while let byte = wire.readSlice(length: 1) { try channel.writeInbound(byte) }
        for frame in frames { #expect(try channel.readInbound(as: Frame.self) == frame) }
        #expect(try channel.readInbound(as: Frame.self) == nil)
        #expect(try channel.finish().isClean)
    }

    /// Payloads with room for the header in front go out as they are, with the header written
    /// there: beforehand, by the encoder, or again where the payload grew after it was written.
    @Test func payloadsWithRoomInFrontGoOutWhole() throws {
        let channel = try makeChannel()
        var sealed = Frame.payloadBuffer(capacity: 8)
        sealed.writeString("sealed")
        Frame.writeHeader(.call, into: &sealed)
        var unsealed = Frame.payloadBuffer(capacity: 8)
        unsealed.writeString("unsealed")
        var grown = Frame.payloadBuffer(capacity: 8)
        grown.writeString("grown")
        Frame.writeHeader(.reply, into: &grown)
        grown.writeString(" after its header")
        var large = Frame.payloadBuffer(capacity: 0)
        large.writeRepeatingByte(3, count: 100_000)
        let frames = [
            Frame(kind: .call, payload: sealed), Frame(kind: .message, payload: unsealed),
            Frame(kind: .reply, payload: grown), Frame(kind: .message, payload: large),
        ]
        for frame in frames {
            try channel.writeOutbound(frame)
            // One buffer per frame: the payload's own, header in front.
            var out = try #require(try channel.readOutbound(as: ByteBuffer.self))
            #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
            #expect(out.readInteger(as: UInt8.self) == frame.kind.rawValue)
            #expect(out.readInteger(as: UInt32.self) == UInt32(frame.payload.readableBytes))
            #expect(out == frame.payload)
        }
        #expect(try channel.finish().isClean)
    }

    @Test func typedPayloads() throws {
        let frame = try Frame(kind: .message, encoding: ["a": 1, "b": 2])
        #expect(try frame.decode([String: Int].self) == ["a": 1, "b": 2])
        #expect(throws: WireError.self) { try frame.decode(Double.self) }
    }

    @Test func oversizeFrameIsRejectedFromItsHeader() throws {
        let channel = try makeChannel(limit: 1024)
        #expect(throws: WireError.frameTooLarge(size: 1025, limit: 1024)) {
            try channel.writeInbound(header(Frame.Kind.message.rawValue, 1025))
        }
        _ = try? channel.finish()
    }

    @Test func frameAtTheLimitIsAccepted() throws {
        let channel = try makeChannel(limit: 1024)
        var bytes = header(Frame.Kind.message.rawValue, 1024)
        bytes.writeRepeatingByte(7, count: 1024)
        try channel.writeInbound(bytes)
        #expect(try channel.readInbound(as: Frame.self)?.payload.readableBytes == 1024)
        #expect(try channel.finish().isClean)
    }

    @Test func unknownKindIsRejected() throws {
        for kind: UInt8 in [0, 6, 15, 21, 255] {
            let channel = try makeChannel()
            #expect(throws: WireError.unknownFrameKind(kind)) { try channel.writeInbound(header(kind, 0)) }
            _ = try? channel.finish()
        }
    }

    @Test func truncatedFrameAtEndOfStreamIsAnError() throws {
        let channel = try makeChannel()
        var bytes = header(Frame.Kind.message.rawValue, 10)
        bytes.writeString("abc")
        try channel.writeInbound(bytes)
        #expect(try channel.readInbound(as: Frame.self) == nil)
        #expect(throws: WireError.truncatedFrame(received: 8, expected: 15)) { try channel.finish() }
    }

    @Test func oversizeOutboundFrameFailsTheWrite() throws {
        let channel = try makeChannel(limit: 4)
        let write = channel.writeAndFlush(Frame(kind: .message, payload: ByteBuffer(string: "too long")))
        #expect(throws: WireError.frameTooLarge(size: 8, limit: 4)) { try write.wait() }
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        _ = try? channel.finish()
    }
}
