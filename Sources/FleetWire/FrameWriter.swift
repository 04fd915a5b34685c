import NIOCore

/// Writes frames to a connection from its event loop straight to the socket's side of its
/// ``FrameEncoder``: for a layer that writes many small frames (FleetMPI's rank messages), which
/// would otherwise each be boxed in an `NIOAny` at the pipeline's tail and unboxed by the
/// encoder.
///
/// The frame goes out exactly as the encoder would send it, and in order with the frames
/// written through the pipeline: both reach the socket's buffer within the call.
///
/// Not thread-safe: used on the channel's event loop.
package struct FrameWriter {
    private let encoder: ChannelHandlerContext
    private let maximumPayloadSize: Int

    /// The writer of `channel`, whose pipeline must hold a ``FrameEncoder``; `nil` when it does
    /// not. Call on the channel's event loop.
    package init?(channel: any Channel) {
        guard let encoder = try? channel.pipeline.syncOperations.context(handlerType: FrameEncoder.self),
              let handler = encoder.handler as? FrameEncoder
        else { return nil }
        self.encoder = encoder
        self.maximumPayloadSize = handler.maximumPayloadSize
    }

    /// Writes and flushes a frame of `kind` carrying `payload`. A payload made with room for the
    /// header in front (``Frame/payloadBuffer(capacity:allocator:)``) and not shared goes out
    /// without a copy (`consuming`: the caller's buffer is moved in, not shared).
    package func writeAndFlush(_ kind: Frame.Kind, payload: consuming ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard payload.readableBytes <= maximumPayloadSize else {
            promise?.fail(WireError.frameTooLarge(size: payload.readableBytes, limit: maximumPayloadSize))
            return
        }
        guard payload.readerIndex >= Frame.headerSize else {
            // No room in front: the encoder copies it or sends the header on its own.
            encoder.channel.writeAndFlush(Frame(kind: kind, payload: payload), promise: promise)
            return
        }
        var frame = payload
        Frame.writeHeader(kind, into: &frame)
        frame.moveReaderIndex(to: frame.readerIndex - Frame.headerSize)
        encoder.writeAndFlush(NIOAny(frame), promise: promise)
    }
}
