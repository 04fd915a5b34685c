#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// Reads a connection's socket on its event loop, between the loop's own turns, and hands what
/// it reads to the channel's pipeline as NIO's own read would: for a wait that expects the next
/// message on this connection and polls for it (``BusyPoll/poll(reading:until:)``).
///
/// When a loop learns of data from `epoll_wait`, a message costs three system calls: the poll
/// that sees it, NIO's `epoll_wait` and NIO's `read`. A reader polling with `read` itself costs
/// one, the read that brings the data, and the waiting task goes on within the same turn of the
/// loop, without suspending.
///
/// The bytes go through the whole pipeline from its head, after any the pipeline holds already,
/// so messages keep their order whichever way they came in. The reader stays out of what NIO
/// handles better: the end of the stream and errors are left for NIO's next read (a read that
/// meets them reports ``ReadOutcome/ended`` and reads no more), and so is a channel that is no
/// longer active, whose descriptor may already belong to another socket.
///
/// Not thread-safe: every method runs on the channel's event loop.
package final class SocketReader {
    /// What one ``read()`` did.
    package enum ReadOutcome {
        /// Bytes arrived and went through the pipeline.
        case read
        /// Nothing has arrived yet.
        case empty
        /// The connection is closing, closed, or failed: NIO reads it from here on.
        case ended
    }

    private let channel: any Channel
    private let descriptor: CInt
    private var sizes: AdaptiveRecvByteBufferAllocator
    /// The buffer the next read fills: made when the last one was handed on, kept while reads
    /// find nothing.
    private var buffer: ByteBuffer?
    private var ended = false
    /// Whether the channel was found active since it last could have closed (a read handed on,
    /// or other work of the loop: see ``recheck()``). Asking takes a lock in NIO.
    private var checked = false
    /// How many reads brought data.
    package private(set) var reads = 0

    /// A reader of `channel`'s socket, whose read buffers are sized by `sizes` as NIO sizes its
    /// own; `nil` when the channel has no socket that can be found (see
    /// ``BusyPoll``). Call on the channel's event loop, once the channel is active.
    ///
    /// A channel that reads only when asked (`autoRead` off, as under an `NIOAsyncChannel`'s
    /// backpressure) gets no reader: reading for it would take data it did not ask for. Leave
    /// `autoRead` on while the reader is used.
    package init?(channel: any Channel, sizes: AdaptiveRecvByteBufferAllocator) {
        guard channel.isActive, let descriptor = BusyPoll.socketDescriptor(of: channel),
              (try? channel.syncOptions?.getOption(.autoRead)) == true
        else { return nil }
        self.channel = channel
        self.descriptor = descriptor
        self.sizes = sizes
    }

    /// Has the next ``read()`` ask whether the channel is still active: call it when the loop
    /// may have run other work since the last read (a new poll).
    package func recheck() {
        checked = false
    }

    /// Reads once, without waiting, and hands what arrived to the pipeline
    /// (`channelRead`, then `channelReadComplete`).
    package func read() -> ReadOutcome {
        guard !ended else { return .ended }
        if !checked {
            guard channel.isActive else {
                ended = true
                return .ended
            }
            checked = true
        }
        var buffer = self.buffer ?? sizes.buffer(allocator: channel.allocator)
        self.buffer = nil
        let (count, error) = buffer.withUnsafeMutableWritableBytes { bytes in
            let count = recv(descriptor, bytes.baseAddress, bytes.count, CInt(MSG_DONTWAIT))
            return (count, count < 0 ? errno : 0)
        }
        if count > 0 {
            buffer.moveWriterIndex(forwardBy: count)
            reads &+= 1
            _ = sizes.record(actualReadBytes: count)
            let pipeline = channel.pipeline.syncOperations
            pipeline.fireChannelRead(NIOAny(buffer))
            pipeline.fireChannelReadComplete()
            // A handler may have closed the channel.
            checked = false
            return .read
        }
        if count < 0, error == EAGAIN || error == EWOULDBLOCK || error == EINTR {
            self.buffer = buffer
            return .empty
        }
        // The end of the stream: NIO's read sees it too, and closes the channel. An error
        // (ECONNRESET) is reported once, to this read: the pipeline hears of it as from NIO's
        // read, and the channel closes.
        ended = true
        if count < 0 {
            channel.pipeline.syncOperations.fireErrorCaught(IOError(errnoCode: error, reason: "recv"))
            channel.close(promise: nil)
        }
        return .ended
    }
}
