import FleetWire
import NIOCore

/// How a rank reaches the others.
enum RankLinks: Sendable {
    /// A TCP connection to each other rank, by world rank (`nil` for this rank).
    case tcp([(any Channel)?])
    /// Shared memory or an MPI library: links the rank polls.
    case polled(any PolledLinks)
}

/// How a rank uses its TCP connections on its loop: one ``BusyPoll`` over them all (`nil` when
/// polling is off), and a ``SocketReader``, a ``FrameWriter`` and the ``RankConnectionHandler``
/// of each (by world rank; `nil` for this rank, or where the socket cannot be read or the frames
/// written directly).
///
/// A class, so that reaching one of them retains one reference, not four arrays.
final class TCPLinks {
    let poll: BusyPoll?
    let readers: [SocketReader?]
    let writers: [FrameWriter?]
    let handlers: [RankConnectionHandler?]

    init(poll: BusyPoll?, readers: [SocketReader?], writers: [FrameWriter?], handlers: [RankConnectionHandler?]) {
        self.poll = poll
        self.readers = readers
        self.writers = writers
        self.handlers = handlers
    }

    /// Whether everything written to `channels` (these links' connections) has gone to their
    /// sockets: a write still held makes progress only when the loop runs, not while it polls.
    func holdsNoWrites(_ channels: [(any Channel)?]) -> Bool {
        for (channel, writer) in zip(channels, writers) {
            if let writer { guard writer.holdsNoWrites else { return false } } else if let channel, !channel.isWritable { return false }
        }
        return true
    }
}
