import NIOCore
import Foundation
import NIOConcurrencyHelpers
import NIOEmbedded
import Testing

@testable import FleetWire

@Suite("Frames past the pipeline: FrameSink and FrameWriter")
struct FrameSinkAndWriterTests {
    @Test func theSinkTakesItsFramesAndThePipelineGetsTheRestInOrder() throws {
        let sink = FrameSink()
        let channel = EmbeddedChannel()
        var order: [String] = []
        let recorder = Recorder { order.append("pipeline \(String(buffer: $0.payload))") }
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(FrameDecoder(limit: PayloadLimit(1 << 20), sink: sink)), recorder,
        ])
        // Until it is set, every frame goes through the pipeline.
        try channel.writeInbound(wire([Frame(kind: .rankMessage, payload: ByteBuffer(string: "early"))]))
        sink.take = { frame in
            guard frame.kind == .rankMessage else { return false }
            order.append("sink \(String(buffer: frame.payload))")
            return true
        }
        // One read with frames of both kinds, the last one split across two reads.
        var bytes = wire([
            Frame(kind: .rankMessage, payload: ByteBuffer(string: "1")), Frame(kind: .message, payload: ByteBuffer(string: "2")),
            Frame(kind: .rankMessage, payload: ByteBuffer(string: "3")), Frame(kind: .rankMessage, payload: ByteBuffer(string: "4")),
            Frame(kind: .message, payload: ByteBuffer(string: "5")), Frame(kind: .rankMessage, payload: ByteBuffer(string: "six")),
        ])
        let head = bytes.readSlice(length: bytes.readableBytes - 2)!
        try channel.writeInbound(head)
        #expect(order == ["pipeline early", "sink 1", "pipeline 2", "sink 3", "sink 4", "pipeline 5"])
        try channel.writeInbound(bytes)
        #expect(order.last == "sink six")
        #expect(try channel.finish().isClean)
    }

    @Test func theWriterSendsWhatTheEncoderSendsInOrderWithThePipelinesWrites() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(FrameEncoder(maximumPayloadSize: 64))
        let writer = try #require(FrameWriter(channel: channel))
        // With room in front, without it, and through the pipeline, interleaved.
        var roomy = Frame.payloadBuffer(capacity: 5)
        roomy.writeString("first")
        writer.writeAndFlush(.rankMessage, payload: roomy, promise: nil)
        channel.writeAndFlush(Frame(kind: .message, payload: ByteBuffer(string: "second")), promise: nil)
        let written = channel.eventLoop.makePromise(of: Void.self)
        writer.writeAndFlush(.goodbye, payload: ByteBuffer(string: "third"), promise: written)
        var sent = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&chunk) }
        let expected = wire([
            Frame(kind: .rankMessage, payload: ByteBuffer(string: "first")), Frame(kind: .message, payload: ByteBuffer(string: "second")),
            Frame(kind: .goodbye, payload: ByteBuffer(string: "third")),
        ])
        #expect(sent == expected)
        try written.futureResult.wait()

        // Over the encoder's limit: the write fails and nothing is sent.
        let tooLarge = channel.eventLoop.makePromise(of: Void.self)
        writer.writeAndFlush(.rankMessage, payload: ByteBuffer(repeating: 1, count: 65), promise: tooLarge)
        #expect(throws: WireError.self) { try tooLarge.futureResult.wait() }
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(try channel.finish().isClean)
    }

    @Test func aPipelineWithoutAnEncoderHasNoWriter() {
        #expect(FrameWriter(channel: EmbeddedChannel()) == nil)
    }
}

/// `frames` as they travel on the wire.
private func wire(_ frames: [Frame]) -> ByteBuffer {
    var bytes = ByteBuffer()
    for frame in frames {
        bytes.writeInteger(frame.kind.rawValue)
        bytes.writeInteger(UInt32(frame.payload.readableBytes))
        var payload = frame.payload
        bytes.writeBuffer(&payload)
    }
    return bytes
}

/// Calls `record` with each frame the pipeline brings.
private final class Recorder: ChannelInboundHandler {
    typealias InboundIn = Frame
    private let record: (Frame) -> Void
    init(_ record: @escaping (Frame) -> Void) { self.record = record }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { record(unwrapInboundIn(data)) }
}

@Suite("FrameWriter on a socket")
struct FrameWriterSocketTests {
    @Test func framesGoStraightToTheSocketAndTheRestThroughTheChannelInOrder() async throws {
        try await withConnections(1) { loop, served, dialled in
            // The reader stops reading, so that the socket fills and later frames queue.
            let received = FrameLog()
            try await dialled[0].eventLoop.submit {
                try dialled[0].pipeline.syncOperations.addHandlers([ByteToMessageHandler(FrameDecoder()), received])
            }.get()
            try await dialled[0].setOption(.autoRead, value: false).get()
            try await served[0].setOption(.writeBufferWaterMark, value: FrameWriter.exactWaterMark).get()
            let count = 2_000
            @Sendable func frame(_ index: Int) -> ByteBuffer {
                var payload = Frame.payloadBuffer(capacity: 4096)
                payload.writeInteger(UInt32(index))
                payload.writeRepeatingByte(7, count: 4092)
                return payload
            }
            let (writer, queued, firstWritable) = try await loop.submit { () -> (NIOLoopBound<FrameWriter>?, Bool, Bool) in
                try served[0].pipeline.syncOperations.addHandler(FrameEncoder())
                guard let writer = FrameWriter(channel: served[0]) else { return (nil, false, false) }
                let firstWritable = writer.holdsNoWrites
                for index in 0..<count { writer.writeAndFlush(.message, payload: frame(index), promise: nil) }
                // 8 MB do not fit the socket: the channel holds the rest, and says so.
                return (NIOLoopBound(writer, eventLoop: loop), !writer.holdsNoWrites && !served[0].isWritable, firstWritable)
            }.get()
            let bound = try #require(writer)
            #expect(firstWritable)
            #expect(queued)
            try await dialled[0].setOption(.autoRead, value: true).get()
            dialled[0].read()
            // The socket drains while the writer's loop is kept busy, so that the channel still
            // holds its frames: the next frame must queue behind them, not go to the socket.
            try await loop.submit {
                usleep(200_000)
                bound.value.writeAndFlush(.message, payload: frame(count), promise: nil)
            }.get()
            for _ in 0..<1_000 where received.count <= count { try await Task.sleep(for: .milliseconds(10)) }
            #expect(received.indices == Array(0...UInt32(count)))
            // Everything left the channel, the remainder of a frame sent in part included:
            // frames may go to the socket directly again.
            #expect(try await loop.submit { bound.value.holdsNoWrites }.get())
        }
    }
}

/// Records the index at the start of each frame's payload.
private final class FrameLog: ChannelInboundHandler, Sendable {
    typealias InboundIn = Frame
    private let state = NIOLockedValueBox<[UInt32]>([])
    var indices: [UInt32] { state.withLockedValue { $0 } }
    var count: Int { state.withLockedValue { $0.count } }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let index = frame.payload.getInteger(at: frame.payload.readerIndex, as: UInt32.self) {
            state.withLockedValue { $0.append(index) }
        }
    }
}
