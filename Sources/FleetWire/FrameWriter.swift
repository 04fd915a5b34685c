#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore
import NIOSSL

/// Writes frames to a connection from its event loop, past its pipeline: for a layer that
/// writes many small frames (FleetMPI's rank messages), which would otherwise each be boxed in an
/// `NIOAny` at the pipeline's tail, unboxed by the encoder, and queued by the channel before its
/// one system call.
///
/// A channel whose write buffer's water marks are ``exactWaterMark`` tells whether it holds
/// a whole frame, or what is left of one, by whether it is writable (one atomic load). When it
/// holds none, and no remainder the writer handed it is left (one of a single byte would not
/// make it unwritable), the frame goes to the socket with `send` at once; what the socket does
/// not take (it is full, or failed) goes on through the channel from the socket's side of its
/// ``FrameEncoder``, after anything the channel holds, as every frame does on other channels.
/// Either way the frame goes out exactly as the encoder would send it, and in order with the
/// frames written through the pipeline. A channel with TLS never gets frames directly.
///
/// A class: the remainders it counts are its own state.
///
/// Not thread-safe: used on the channel's event loop.
package final class FrameWriter {
    private let encoder: ChannelHandlerContext
    private let channel: any Channel
    /// The channel's socket, when it can be found (``BusyPoll``), no TLS handler encrypts what
    /// is written, and the channel's writability tells whether it holds a write
    /// (``exactWaterMark``).
    private let descriptor: CInt?
    private let maximumPayloadSize: Int
    /// Remainders of frames sent in part that the channel has not written yet.
    private var remainders = 0

    /// Water marks under which a channel is writable exactly when it holds no write: every
    /// frame (at least ``Frame/headerSize`` bytes) takes it over the high mark, and it is
    /// writable again only once nothing is left (under the low mark of 1). Set it on the channel
    /// (`ChannelOptions.writeBufferWaterMark`) for frames to go to its socket directly.
    package static let exactWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1, high: 1)

    /// The writer of `channel`, whose pipeline must hold a ``FrameEncoder``; `nil` when it does
    /// not. Call on the channel's event loop.
    package init?(channel: any Channel) {
        guard let encoder = try? channel.pipeline.syncOperations.context(handlerType: FrameEncoder.self),
              let handler = encoder.handler as? FrameEncoder
        else { return nil }
        self.encoder = encoder
        self.channel = channel
        // A channel without a socket (an embedded one) is not asked for its water marks: it
        // may not know the option.
        let encrypted = (try? channel.pipeline.syncOperations.context(handlerType: NIOSSLHandler.self)) != nil
        let descriptor = encrypted ? nil : BusyPoll.socketDescriptor(of: channel)
        let marks = descriptor == nil ? nil : try? channel.syncOptions?.getOption(.writeBufferWaterMark)
        self.descriptor = marks.map { $0.low <= 1 && $0.high < Frame.headerSize } == true ? descriptor : nil
        self.maximumPayloadSize = handler.maximumPayloadSize
    }

    /// Writes and flushes a frame of `kind` carrying `payload`. A payload made with room for the
    /// header in front (``Frame/payloadBuffer(capacity:allocator:)``) and not shared goes out
    /// without a copy (`consuming`: the caller's buffer is moved in, not shared).
    package func writeAndFlush(_ kind: Frame.Kind, payload: consuming ByteBuffer, promise: EventLoopPromise<Void>?) {
        // Over the limit, or no room in front: through the encoder, which refuses the one and
        // copies the other (or sends its header on its own).
        var frame = payload
        guard frame.readableBytes <= maximumPayloadSize, Frame.wrap(&frame, in: kind) else {
            channel.writeAndFlush(Frame(kind: kind, payload: frame), promise: promise)
            return
        }
        // Nothing queued in the channel, which is open (so the descriptor is still its socket):
        // straight to the socket.
        if let descriptor, holdsNoWrites, channel.isActive {
            let sent = frame.withUnsafeReadableBytes { bytes in
                send(descriptor, bytes.baseAddress, bytes.count, CInt(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if sent == frame.readableBytes {
                promise?.succeed()
                return
            }
            if sent > 0 {
                // The rest goes through the channel; until it is written, so do later frames.
                frame.moveReaderIndex(forwardBy: sent)
                remainders += 1
                let written = channel.eventLoop.makePromise(of: Void.self)
                written.futureResult.assumeIsolated().whenComplete { result in
                    self.remainders -= 1
                    promise?.completeWith(result)
                }
                encoder.writeAndFlush(NIOAny(frame), promise: written)
                return
            }
            // Nothing sent (the socket is full, or failed, which the channel's write then meets).
        }
        encoder.writeAndFlush(NIOAny(frame), promise: promise)
    }

    /// Whether the channel holds no write of its own (under ``exactWaterMark``), nor a
    /// remainder this writer handed it.
    package var holdsNoWrites: Bool {
        remainders == 0 && channel.isWritable
    }
}
