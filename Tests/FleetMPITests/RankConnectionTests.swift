@testable import FleetMPI
import FleetWire
import NIOCore
import NIOEmbedded
import Testing

/// A connection to another rank, driven through its frame decoder in an embedded channel: what
/// reaches the mailbox, and what a peer that breaks the protocol gets.
@Suite("Rank connections")
struct RankConnectionTests {
    /// The bytes of a frame of `kind` carrying `payload`.
    func frame(_ kind: Frame.Kind, _ payload: [UInt8]) -> [UInt8] {
        var bytes = ByteBuffer()
        bytes.writeInteger(kind.rawValue)
        bytes.writeInteger(UInt32(payload.count))
        bytes.writeBytes(payload)
        return Array(bytes.readableBytesView)
    }

    /// A rank message of the world communicator with `tag` and `text`.
    func message(tag: Int32, _ text: String) -> [UInt8] {
        var payload = ByteBuffer()
        RankMessageHeader.write(context: Communicator.worldContext, tag: tag, into: &payload)
        payload.writeString(text)
        return frame(.rankMessage, Array(payload.readableBytesView))
    }

    func connection(to peer: Int, _ mailbox: Mailbox, events: @escaping (RankLinkEvent) -> Void = { _ in }) throws -> EmbeddedChannel {
        let handler = RankConnectionHandler(mailbox: mailbox, size: 2, peer: peer, identified: { _, _ in true }, event: events)
        let channel = EmbeddedChannel(handlers: [ByteToMessageHandler(FrameDecoder()), handler])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7)).wait()
        return channel
    }

    func pending(_ mailbox: Mailbox, tag: Int32) throws -> String? {
        try mailbox.peek(MessagePattern(context: Communicator.worldContext, source: 1, tag: tag)).map { String(buffer: $0.data) }
    }

    @Test func messagesReachTheMailboxFromTheirPeer() throws {
        let mailbox = Mailbox()
        let channel = try connection(to: 1, mailbox)
        try channel.writeInbound(ByteBuffer(bytes: message(tag: 1, "one") + message(tag: 2, "two")))
        #expect(try pending(mailbox, tag: 1) == "one")
        #expect(try pending(mailbox, tag: 2) == "two")
        #expect(channel.isActive)
        _ = try? channel.finish()
    }

    /// A message too short for its header fails the job naming the peer and closes the
    /// connection, and what the same read brought after it is not delivered: a broken peer's
    /// bytes are not trusted.
    @Test(arguments: [[0, 1, 2, 3] as [UInt8], []])
    func nothingAfterAMalformedMessageIsDelivered(malformed payload: [UInt8]) throws {
        let mailbox = Mailbox()
        let closed = ClosedEvents()
        let channel = try connection(to: 1, mailbox) { if case .closed = $0 { closed.count += 1 } }
        let bytes = message(tag: 1, "before") + frame(.rankMessage, payload) + message(tag: 2, "after") + message(tag: 3, "later")
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        #expect(try pending(mailbox, tag: 1) == "before")
        // (A failed mailbox still gives what it holds, and throws the failure for what it lacks.)
        #expect((try? pending(mailbox, tag: 2)) == nil, "a message after the malformed one was delivered")
        #expect((try? pending(mailbox, tag: 3)) == nil, "a message after the malformed one was delivered")
        #expect(!channel.isActive)
        #expect(closed.count == 1)
        // The job fails at once, naming the peer.
        guard case let .malformedMessage(from: rank, _)? = mailbox.failure else {
            Issue.record("the mailbox did not fail: \(String(describing: mailbox.failure))")
            return
        }
        #expect(rank == 1)
    }

    /// Counts the connection's closed events (the handler reports them on the channel's loop).
    final class ClosedEvents: @unchecked Sendable {
        // Safe: an embedded channel runs everything on the test's own thread.
        var count = 0
    }
}
