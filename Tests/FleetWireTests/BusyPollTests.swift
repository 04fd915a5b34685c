import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

@testable import FleetWire

@Suite("Busy polling of an event loop's sockets")
struct BusyPollTests {
    @Test func findsTheDescriptorOfASocketChannelAndNoneOfAnEmbeddedOne() async throws {
        try await withConnections(1) { loop, served, _ in
            let descriptor = try await loop.submit { BusyPoll.socketDescriptor(of: served[0]) }.get()
            let found = try #require(descriptor)
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let result = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(found, $0, &length) }
            }
            #expect(result == 0)
            #expect(Int(UInt16(bigEndian: address.sin_port)) == served[0].localAddress?.port)
        }
        let embedded = EmbeddedChannel()
        #expect(BusyPoll.socketDescriptor(of: embedded) == nil)
        #expect(BusyPoll(channel: embedded, budget: .milliseconds(1)) == nil)
    }

    @Test func aPollEndsWhenAnySocketOfItsLoopHasData() async throws {
        try await withConnections(2) { loop, served, dialled in
            // Data comes on the second connection only, a while after the poll started.
            let write = dialled[1].eventLoop.scheduleTask(in: .milliseconds(100)) {
                dialled[1].writeAndFlush(ByteBuffer(string: "hello"), promise: nil)
            }
            defer { write.cancel() }
            let (ended, seconds) = try await loop.submit {
                let first = BusyPoll(channel: served[0], budget: .seconds(5))!
                let second = BusyPoll(channel: served[1], budget: .seconds(5))!
                defer { first.release(); second.release() }
                let start = NIODeadline.now()
                let ended = first.poll(until: { false })
                return (ended, Double((NIODeadline.now() - start).nanoseconds) / 1e9)
            }.get()
            #expect(ended)
            #expect(seconds < 4)
        }
    }

    @Test func aPollGivesUpAfterItsBudgetAndEndsWhenItsConditionHolds() async throws {
        try await withConnections(1) { loop, served, _ in
            let (ended, seconds, conditionEnded) = try await loop.submit {
                let poll = BusyPoll(channel: served[0], budget: .milliseconds(20))!
                defer { poll.release() }
                let start = NIODeadline.now()
                let ended = poll.poll(until: { false })
                let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
                var turns = 0
                let conditionEnded = poll.poll(until: { turns += 1; return turns == 3 })
                return (ended, seconds, conditionEnded)
            }.get()
            #expect(!ended)
            #expect(seconds >= 0.02)
            #expect(conditionEnded)
        }
    }

    @Test func pollsAfterQuickWaitsAndProbesAfterSlowOnes() async throws {
        try await withConnections(1) { loop, served, _ in
            let decisions = try await loop.submit {
                let poll = BusyPoll(channel: served[0], budget: .milliseconds(1))!
                defer { poll.release() }
                var decisions = [poll.shouldPoll()]
                poll.waitStarted()
                usleep(5_000)
                poll.waitEnded()
                for _ in 0..<BusyPoll.probeInterval { decisions.append(poll.shouldPoll()) }
                poll.waitStarted()
                poll.waitEnded()
                decisions.append(poll.shouldPoll())
                return decisions
            }.get()
            let probes = BusyPoll.probeInterval
            #expect(decisions.first == true)
            #expect(decisions[1..<probes] == ArraySlice(repeating: false, count: probes - 1))
            #expect(decisions[probes] == true)
            #expect(decisions.last == true)
        }
    }

    @Test func aZeroBudgetTurnsPollingOff() async throws {
        try await withConnections(1) { loop, served, _ in
            let made = try await loop.submit { BusyPoll(channel: served[0], budget: .zero) != nil }.get()
            #expect(!made)
        }
    }

    @Test func aLoopsSetLastsWhileAConnectionUsesIt() async throws {
        try await withConnections(2) { loop, served, _ in
            let (shared, sameAfterOneRelease, renewed) = try await loop.submit {
                let first = BusyPoll(channel: served[0], budget: .milliseconds(1))!
                let second = BusyPoll(channel: served[1], budget: .milliseconds(1))!
                let shared = first.sockets === second.sockets
                let before = first.sockets
                first.release()
                first.release()   // A second release does nothing.
                let third = BusyPoll(channel: served[0], budget: .milliseconds(1))!
                let sameAfterOneRelease = third.sockets === before
                second.release()
                third.release()
                let fourth = BusyPoll(channel: served[0], budget: .milliseconds(1))!
                defer { fourth.release() }
                return (shared, sameAfterOneRelease, fourth.sockets !== before)
            }.get()
            #expect(shared)
            #expect(sameAfterOneRelease)
            #expect(renewed)
        }
    }
}

/// Runs `body` with `count` TCP connections on loopback: the accepted ends, all on `loop`, and
/// the dialled ends, on another loop. Closes everything afterwards.
private func withConnections(
    _ count: Int,
    _ body: (any EventLoop, [any Channel], [any Channel]) async throws -> Void
) async throws {
    let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let accepted = Mutex<[any Channel]>([])
    let listener = try await ServerBootstrap(group: serverGroup)
        .childChannelInitializer { channel in
            accepted.withLock { $0.append(channel) }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        .bind(host: "127.0.0.1", port: 0).get()
    var dialled: [any Channel] = []
    for _ in 0..<count {
        let channel = try await ClientBootstrap(group: clientGroup).connect(to: listener.localAddress!).get()
        dialled.append(channel)
        // Connections are accepted in the order they were dialled: one at a time.
        for _ in 0..<500 where accepted.withLock({ $0.count }) < dialled.count {
            try await Task.sleep(for: .milliseconds(10))
        }
    }
    let served = accepted.withLock { $0 }
    do {
        try #require(served.count == count)
        try await body(serverGroup.next(), served, dialled)
    } catch {
        try? await close(listener, served, dialled, serverGroup, clientGroup)
        throw error
    }
    try await close(listener, served, dialled, serverGroup, clientGroup)
}

private func close(
    _ listener: any Channel, _ served: [any Channel], _ dialled: [any Channel],
    _ groups: MultiThreadedEventLoopGroup...
) async throws {
    for channel in dialled + served + [listener] { try? await channel.close() }
    for group in groups { try await group.shutdownGracefully() }
}
