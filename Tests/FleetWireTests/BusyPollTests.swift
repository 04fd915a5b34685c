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
            let outcome = try await loop.submit { () -> (Bool, Double)? in
                guard let first = BusyPoll(channel: served[0], budget: .seconds(5)),
                      let second = BusyPoll(channel: served[1], budget: .seconds(5)) else { return nil }
                defer { first.release(); second.release() }
                let start = NIODeadline.now()
                let ended = first.poll(until: { false })
                return (ended, seconds(since: start))
            }.get()
            let (ended, waited) = try #require(outcome)
            #expect(ended)
            #expect(waited >= 0.05 && waited < 4)
        }
    }

    @Test func aPollEndsWhenWorkIsQueuedOnItsLoopThroughAnyExecutor() async throws {
        try await withConnections(1) { loop, served, dialled in
            // Another connection's executor on the same loop queues work, from another thread.
            let other = EventLoopTaskExecutor(loop)
            let mine = EventLoopTaskExecutor(loop)
            let queue = dialled[0].eventLoop.scheduleTask(in: .milliseconds(100)) { other.execute {} }
            defer { queue.cancel() }
            let outcome = try await loop.submit { () -> (Bool, Double)? in
                guard let poll = BusyPoll(channel: served[0], budget: .seconds(5)) else { return nil }
                defer { poll.release() }
                let start = NIODeadline.now()
                let ended = poll.poll(until: { mine.hasQueuedWork })
                return (ended, seconds(since: start))
            }.get()
            let (ended, waited) = try #require(outcome)
            #expect(ended)
            #expect(waited >= 0.05 && waited < 4)
            // The work ran, and nothing is counted as waiting any more.
            try await loop.submit {}.get()
            #expect(!mine.hasQueuedWork)
        }
    }

    @Test func aPollGivesUpAfterItsBudgetAndEndsWhenItsConditionHolds() async throws {
        try await withConnections(1) { loop, served, _ in
            let outcome = try await loop.submit { () -> (Bool, Double, Bool, Bool)? in
                guard let poll = BusyPoll(channel: served[0], budget: .milliseconds(20)) else { return nil }
                let start = NIODeadline.now()
                let ended = poll.poll(until: { false })
                let waited = seconds(since: start)
                var turns = 0
                let conditionEnded = poll.poll(until: { turns += 1; return turns == 3 })
                poll.release()
                // A released poll does not poll.
                let afterRelease = poll.poll(until: { false })
                return (ended, waited, conditionEnded, afterRelease)
            }.get()
            let (ended, waited, conditionEnded, afterRelease) = try #require(outcome)
            #expect(!ended)
            #expect(waited >= 0.02)
            #expect(conditionEnded)
            #expect(!afterRelease)
        }
    }

    @Test func pollsAfterQuickWaitsAndProbesAfterSlowOnes() async throws {
        try await withConnections(1) { loop, served, _ in
            let outcome = try await loop.submit { () -> [Bool]? in
                guard let poll = BusyPoll(channel: served[0], budget: .milliseconds(1)) else { return nil }
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
            let decisions = try #require(outcome)
            let probes = BusyPoll.probeInterval
            #expect(decisions.first == true)
            #expect(decisions[1..<probes] == ArraySlice(repeating: false, count: probes - 1))
            #expect(decisions[probes] == true)
            #expect(decisions.last == true)
        }
    }

    @Test func pollsThatFindTheLoopBusyTurnPollingOffUntilAProbe() async throws {
        try await withConnections(1) { loop, served, _ in
            let poll = try await loop.submit { BusyPoll(channel: served[0], budget: .milliseconds(1)).map { NIOLoopBound($0, eventLoop: loop) } }.get()
            let bound = try #require(poll)
            // Two polls in a row that find work at their first look: the loop is busy.
            var decisions = [Bool]()
            for _ in 0..<2 {
                decisions += try await loop.submit {
                    let decision = bound.value.shouldPoll()
                    bound.value.pollSoon(on: loop, until: { true })
                    return [decision]
                }.get()
                try await loop.submit {}.get()   // The poll ran.
            }
            decisions += try await loop.submit {
                defer { bound.value.release() }
                return (0..<BusyPoll.probeInterval).map { _ in bound.value.shouldPoll() }
            }.get()
            let probes = BusyPoll.probeInterval
            #expect(decisions[0..<2] == [true, true])
            #expect(decisions[2..<(probes + 1)] == ArraySlice(repeating: false, count: probes - 1))
            #expect(decisions[probes + 1] == true)
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
            let outcome = try await loop.submit { () -> (Bool, Bool, Bool)? in
                guard let first = BusyPoll(channel: served[0], budget: .milliseconds(1)),
                      let second = BusyPoll(channel: served[1], budget: .milliseconds(1)) else { return nil }
                let shared = first.sockets === second.sockets
                let before = first.sockets
                first.release()
                first.release()   // A second release does nothing.
                guard let third = BusyPoll(channel: served[0], budget: .milliseconds(1)) else { return nil }
                let sameAfterOneRelease = third.sockets === before
                second.release()
                third.release()
                guard let fourth = BusyPoll(channel: served[0], budget: .milliseconds(1)) else { return nil }
                defer { fourth.release() }
                return (shared, sameAfterOneRelease, fourth.sockets !== before)
            }.get()
            let (shared, sameAfterOneRelease, renewed) = try #require(outcome)
            #expect(shared)
            #expect(sameAfterOneRelease)
            #expect(renewed)
        }
    }
}

func seconds(since start: NIODeadline) -> Double {
    Double((NIODeadline.now() - start).nanoseconds) / 1e9
}

/// Runs `body` with `count` TCP connections on loopback: the accepted ends, all on `loop`, and
/// the dialled ends, on another loop. Closes everything afterwards, also when setting up fails.
func withConnections(
    _ count: Int,
    _ body: (any EventLoop, [any Channel], [any Channel]) async throws -> Void
) async throws {
    let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let accepted = Mutex<[any Channel]>([])
    var listener: (any Channel)?
    var dialled: [any Channel] = []
    do {
        let server = try await ServerBootstrap(group: serverGroup)
            .childChannelInitializer { channel in
                accepted.withLock { $0.append(channel) }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        listener = server
        for _ in 0..<count {
            dialled.append(try await ClientBootstrap(group: clientGroup).connect(to: server.localAddress!).get())
            // Connections are accepted in the order they were dialled: one at a time.
            for _ in 0..<500 where accepted.withLock({ $0.count }) < dialled.count {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let served = accepted.withLock { $0 }
        try #require(served.count == count)
        try await body(serverGroup.next(), served, dialled)
    } catch {
        await close([listener].compactMap { $0 } + dialled + accepted.withLock { $0 }, serverGroup, clientGroup)
        throw error
    }
    await close([listener].compactMap { $0 } + dialled + accepted.withLock { $0 }, serverGroup, clientGroup)
}

private func close(_ channels: [any Channel], _ groups: MultiThreadedEventLoopGroup...) async {
    for channel in channels { try? await channel.close() }
    for group in groups { try? await group.shutdownGracefully() }
}
