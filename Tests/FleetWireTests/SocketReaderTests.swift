import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

@testable import FleetWire

@Suite("Reading a connection's socket between the loop's turns")
struct SocketReaderTests {
    @Test func bytesReadDirectlyAndByTheLoopReachThePipelineInOrder() async throws {
        try await withConnections(1) { loop, served, dialled in
            let collected = try await Collector.add(to: served[0])
            let bound = try await reader(of: served[0])
            #expect(try await loop.submit { bound.value.read() }.get() == .empty)

            // Read directly: the pipeline gets the bytes, and a read complete. (Written while the
            // loop runs the reads, so that it cannot read them itself first.)
            #expect(try await readDirectly(bound, on: loop, after: dialled[0].writeAndFlush(ByteBuffer(string: "one"), promise: nil), until: { collected.text == "one" }))
            #expect(collected.readsCompleted >= 1)

            // Read by the loop itself, as if there were no reader.
            try await dialled[0].writeAndFlush(ByteBuffer(string: "two")).get()
            try await eventually { collected.text == "onetwo" }

            // Directly again, after what the loop read.
            #expect(try await readDirectly(bound, on: loop, after: dialled[0].writeAndFlush(ByteBuffer(string: "three"), promise: nil), until: { collected.text == "onetwothree" }))

            // The end of the stream is left to NIO, which closes the channel.
            try await dialled[0].close()
            let ended = try await loop.submit { () -> Bool in
                let start = NIODeadline.now()
                while seconds(since: start) < 5 {
                    if bound.value.read() == .ended { return true }
                }
                return false
            }.get()
            #expect(ended)
            try await served[0].closeFuture.get()
            #expect(try await loop.submit { bound.value.read() }.get() == .ended)
            #expect(collected.text == "onetwothree")
        }
    }

    @Test func aResetConnectionEndsTheReaderAndClosesTheChannel() async throws {
        try await withConnections(1) { loop, served, dialled in
            let collected = try await Collector.add(to: served[0])
            let bound = try await reader(of: served[0])
            // A close with a zero linger sends a reset, which a read reports once.
            let lingering = try await dialled[0].eventLoop.submit { () -> Bool in
                guard let descriptor = BusyPoll.socketDescriptor(of: dialled[0]) else { return false }
                var zero = linger(l_onoff: 1, l_linger: 0)
                return setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &zero, socklen_t(MemoryLayout<linger>.size)) == 0
            }.get()
            try #require(lingering)
            let outcome = try await loop.submit { () -> SocketReader.ReadOutcome in
                // Closed while the loop runs the reads: the reader, not NIO, meets the reset.
                dialled[0].close(promise: nil)
                let start = NIODeadline.now()
                while seconds(since: start) < 5 {
                    let outcome = bound.value.read()
                    if outcome != .empty { return outcome }
                }
                return .empty
            }.get()
            #expect(outcome == .ended)
            try await served[0].closeFuture.get()
            #expect(collected.text.isEmpty)
        }
    }

    @Test func aPollThatReadsEndsWhenItsConditionHoldsAfterARead() async throws {
        try await withConnections(1) { loop, served, dialled in
            let collected = try await Collector.add(to: served[0])
            let write = writeLater("late", to: dialled[0])
            defer { write.cancel() }
            let outcome = try await loop.submit { () -> (Bool, Double, String)? in
                guard let poll = BusyPoll(channel: served[0], budget: .seconds(5)),
                      let reader = SocketReader(channel: served[0], sizes: AdaptiveRecvByteBufferAllocator()) else { return nil }
                defer { poll.release() }
                let start = NIODeadline.now()
                // Ended by the read itself, within the same turn of the loop.
                let ended = poll.poll(reading: reader, until: { !collected.text.isEmpty })
                return (ended, seconds(since: start), collected.text)
            }.get()
            let (ended, waited, text) = try #require(outcome)
            #expect(ended)
            #expect(waited >= 0.05 && waited < 4)
            #expect(text == "late")
        }
    }

    @Test func aPollThatReadsOneSocketEndsWhenAnotherHasData() async throws {
        try await withConnections(2) { loop, served, dialled in
            let first = try await Collector.add(to: served[0])
            let write = writeLater("other", to: dialled[1])
            defer { write.cancel() }
            let outcome = try await loop.submit { () -> (Bool, Double)? in
                guard let poll = BusyPoll(channels: served, on: loop, budget: .seconds(5)),
                      let reader = SocketReader(channel: served[0], sizes: AdaptiveRecvByteBufferAllocator()) else { return nil }
                defer { poll.release() }
                let start = NIODeadline.now()
                let ended = poll.poll(reading: reader, until: { false })
                return (ended, seconds(since: start))
            }.get()
            let (ended, waited) = try #require(outcome)
            #expect(ended)
            #expect(waited >= 0.05 && waited < 4)
            #expect(first.text.isEmpty)
        }
    }

    @Test func aPollOfOneConnectionReadsItsSocketAndEndsAfterTheRead() async throws {
        try await withConnections(1) { loop, served, dialled in
            let collected = try await Collector.add(to: served[0])
            let poll = try await loop.submit { BusyPoll(channel: served[0], budget: .seconds(5)).map { NIOLoopBound($0, eventLoop: loop) } }.get()
            let bound = try #require(poll)
            let write = writeLater("reply", to: dialled[0])
            defer { write.cancel() }
            let seenWithinThePoll = Flag()
            let start = NIODeadline.now()
            try await loop.submit {
                bound.value.pollSoon(on: loop, until: {
                    if !collected.text.isEmpty { seenWithinThePoll.set() }
                    return false
                })
            }.get()
            // The poll ran; the loop is free again well before the budget.
            try await loop.submit {}.get()
            let waited = seconds(since: start)
            try await loop.submit { bound.value.release() }.get()
            #expect(collected.text == "reply")
            #expect(seenWithinThePoll.isSet)
            #expect(waited >= 0.05 && waited < 4)
        }
    }

    @Test func aChannelWithoutASocketHasNoReader() {
        let embedded = EmbeddedChannel()
        #expect(SocketReader(channel: embedded, sizes: AdaptiveRecvByteBufferAllocator()) == nil)
    }
}

/// Writes `text` to `channel` 100 ms from now.
private func writeLater(_ text: String, to channel: any Channel) -> Scheduled<Void> {
    channel.eventLoop.scheduleTask(in: .milliseconds(100)) { channel.writeAndFlush(ByteBuffer(string: text), promise: nil) }
}

/// A reader of `channel`, made on its loop.
private func reader(of channel: any Channel) async throws -> NIOLoopBound<SocketReader> {
    let reader = try await channel.eventLoop.submit {
        SocketReader(channel: channel, sizes: AdaptiveRecvByteBufferAllocator()).map { NIOLoopBound($0, eventLoop: channel.eventLoop) }
    }.get()
    return try #require(reader)
}

/// Runs `write` on `loop`, then reads `reader` there until `done` holds; `false` after 5 seconds.
private func readDirectly(
    _ reader: NIOLoopBound<SocketReader>, on loop: any EventLoop, after write: @escaping @autoclosure @Sendable () -> Void,
    until done: @escaping @Sendable () -> Bool
) async throws -> Bool {
    try await loop.submit { () -> Bool in
        write()
        let start = NIODeadline.now()
        while seconds(since: start) < 5 {
            if reader.value.read() == .read, done() { return true }
        }
        return false
    }.get()
}

/// Waits up to 5 seconds for `condition`.
private func eventually(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    try #require(condition())
}

/// A flag set once, from any thread.
private final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Collects what a channel's pipeline reads, in order.
private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let state = Mutex((text: "", readsCompleted: 0))

    var text: String { state.withLock { $0.text } }
    var readsCompleted: Int { state.withLock { $0.readsCompleted } }

    static func add(to channel: any Channel) async throws -> Collector {
        let collector = Collector()
        try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(collector) }.get()
        return collector
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        state.withLock { $0.text += String(buffer: bytes) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        state.withLock { $0.readsCompleted += 1 }
    }
}
