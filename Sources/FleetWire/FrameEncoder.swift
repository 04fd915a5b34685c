import NIOCore

/// Writes ``Frame``s as a header and payload.
///
/// A payload with room in front of its reader index (``Frame/payloadBuffer(capacity:allocator:)``)
/// gets the header written there and goes out as it is. Other small payloads are copied behind
/// the header in one buffer; large ones go out as two writes, so a multi-megabyte payload is
/// never copied. A frame over the size limit fails its write with
/// ``WireError/frameTooLarge(size:limit:)`` and nothing is sent.
public final class FrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = Frame
    public typealias OutboundOut = ByteBuffer

    /// The largest payload sent, in bytes.
    public let maximumPayloadSize: Int

    private static let copyThreshold = 16 * 1024

    /// Creates an encoder that refuses payloads over `maximumPayloadSize` bytes.
    public init(maximumPayloadSize: Int = Frame.defaultMaximumPayloadSize) {
        self.maximumPayloadSize = min(maximumPayloadSize, Int(UInt32.max))
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        let size = frame.payload.readableBytes
        guard size <= maximumPayloadSize else {
            promise?.fail(WireError.frameTooLarge(size: size, limit: maximumPayloadSize))
            return
        }
        var whole = frame.payload
        if Frame.wrap(&whole, in: frame.kind) {
            // Room for the header in front of the payload, which may hold it already
            // (``Frame/writeHeader(_:into:)``).
            context.write(wrapOutboundOut(whole), promise: promise)
        } else if size <= Self.copyThreshold {
            var out = context.channel.allocator.buffer(capacity: Frame.headerSize + size)
            out.writeInteger(frame.kind.rawValue)
            out.writeInteger(UInt32(size))
            var payload = frame.payload
            out.writeBuffer(&payload)
            context.write(wrapOutboundOut(out), promise: promise)
        } else {
            var header = context.channel.allocator.buffer(capacity: Frame.headerSize)
            header.writeInteger(frame.kind.rawValue)
            header.writeInteger(UInt32(size))
            context.write(wrapOutboundOut(header), promise: nil)
            context.write(wrapOutboundOut(frame.payload), promise: promise)
        }
    }
}
