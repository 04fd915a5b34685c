@testable import FleetCooperative
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("CooperativeLoop: tasks, one thread, shared state")
struct CooperativeLoopTests {
    @Test func everyTaskRunsOnTheLoopsOneThread() async throws {
        let threads = try await onLoop { loop -> [UInt] in
            let seen = Log<UInt>()
            seen.append(currentThread())
            var children: [CooperativeTask<Void>] = []
            for _ in 0..<20 {
                children.append(loop.add {
                    for _ in 0..<5 {
                        seen.append(currentThread())
                        await loop.yield()
                        try await loop.sleep(for: .milliseconds(1))
                    }
                    // After an offload the task is back on the loop's thread.
                    let other = try await loop.offload { currentThread() }
                    #expect(other != currentThread())
                    seen.append(currentThread())
                })
            }
            for child in children { try await child.value }
            return seen.entries
        }
        #expect(threads.count == 1 + 20 * 6)
        #expect(Set(threads).count == 1)
        #expect(threads[0] != currentThread())
    }

    @Test func tasksMutateSharedStateWithoutLocks() async throws {
        let (total, maxInFlight) = try await onLoop { loop -> (Int, Int) in
            final class Counter {
                var value = 0
                var inFlight = 0
                var maxInFlight = 0
            }
            let counter = Counter()  // not Sendable; shared by 50 tasks, no lock
            var children: [CooperativeTask<Void>] = []
            for _ in 0..<50 {
                children.append(loop.add {
                    for _ in 0..<200 {
                        let read = counter.value
                        counter.inFlight += 1
                        counter.maxInFlight = max(counter.maxInFlight, counter.inFlight)
                        counter.value = read + 1  // no await between read and write: atomic here
                        await loop.yield()
                        counter.inFlight -= 1
                    }
                })
            }
            for child in children { try await child.value }
            return (counter.value, counter.maxInFlight)
        }
        #expect(total == 50 * 200)
        #expect(maxInFlight == 50)  // the tasks really did interleave
    }

    @Test func addedTasksStartInOrderWhenRunIsCalledAndYieldAlternates() async throws {
        // The tasks' first jobs reach the loop in whatever order the runtime schedules them
        // (the seed's printers came out goodbye-first in about 3 runs of 10): many fresh loops.
        for _ in 0..<30 {
            let loop = CooperativeLoop()
            let order = SendableLines()
            for message in ["hello", "goodbye", "again"] {
                await loop.add { loop in
                    for _ in 0..<3 {
                        order.append(message)
                        await loop.yield()
                    }
                }
            }
            #expect(order.all.isEmpty)  // nothing runs before run()
            try await loop.run(until: .now + .seconds(30))
            #expect(order.all == Array(repeating: ["hello", "goodbye", "again"], count: 3).flatMap { $0 })
            #expect(await loop.taskCount == 0)
        }
    }

    @Test func sleepsEndInDeadlineOrder() async throws {
        let order = try await onLoop { loop -> [Int] in
            let log = Log<Int>()
            var children: [CooperativeTask<Void>] = []
            // Deadlines from one instant, so a slow start of a task cannot reorder them.
            let start = ContinuousClock.now
            for milliseconds in [60, 20, 40, 0] {
                children.append(loop.add {
                    try await loop.sleep(until: start + .milliseconds(milliseconds))
                    log.append(milliseconds)
                })
            }
            for child in children { try await child.value }
            return log.entries
        }
        #expect(order == [0, 20, 40, 60])
    }

    @Test func childErrorsPropagateToTheParent() async throws {
        let caught = try await onLoop { loop -> Boom? in
            let child = loop.add { () -> Int in
                try await loop.sleep(for: .milliseconds(1))
                throw Boom(code: 7)
            }
            let fine = loop.add { 42 }
            #expect(try await fine.value == 42)
            do {
                _ = try await child.value
                return nil
            } catch let error as Boom {
                return error
            }
        }
        #expect(caught == Boom(code: 7))
    }

    @Test func anErrorNobodyAwaitsEndsRun() async throws {
        let loop = CooperativeLoop()
        await loop.add { loop in
            try await loop.sleep(for: .milliseconds(1))
            throw Boom(code: 1)
        }
        await loop.add { loop in try await loop.sleep(for: .milliseconds(5)) }
        await #expect(throws: Boom(code: 1)) { try await loop.run(until: .now + .seconds(30)) }
        // The loop is still usable.
        let again = await loop.add { _ in 5 }
        try await loop.run(until: .now + .seconds(30))
        #expect(try await again.value == 5)
    }

    @Test func cancellingAParentCancelsTheChildItAwaits() async throws {
        let childCancelled = try await onLoop { loop -> Bool in
            let flag = Log<Bool>()
            let parent = loop.add {
                let child = loop.add {
                    do {
                        try await loop.sleep(for: .seconds(60))
                    } catch is CancellationError {
                        flag.append(true)
                        throw CancellationError()
                    }
                }
                try await child.value
            }
            try await loop.sleep(for: .milliseconds(10))
            parent.cancel()
            let error16 = await caught { try await parent.value }
            #expect(error16 is CancellationError)
            return flag.entries == [true]
        }
        #expect(childCancelled)
    }

    @Test func runUntilCancelsWhatIsLeftAtTheDeadline() async throws {
        let loop = CooperativeLoop()
        let events = SendableLines()
        await loop.add { loop in
            do {
                try await loop.sleep(for: .seconds(60))
                events.append("woke")
            } catch {
                events.append("cancelled")
            }
        }
        await loop.add { loop in
            try await loop.sleep(for: .milliseconds(1))
            events.append("done")
        }
        try await loop.run(until: .now + .seconds(1))  // ample for the 1 ms task, even on a loaded machine
        #expect(events.all == ["done", "cancelled"])
        #expect(await loop.taskCount == 0)
    }

    @Test func offloadReturnsItsResultAndErrors() async throws {
        try await onLoop { loop in
            let sum = try await loop.offload { (1...1_000).reduce(0, +) }
            #expect(sum == 500_500)
            await #expect(throws: Boom(code: 3)) { try await loop.offload { () throws -> Int in throw Boom(code: 3) } }
        }
    }

    @Test func theLoopKeepsRunningWhileWorkIsOffloaded() async throws {
        // The offloaded work waits until another task of the loop has ticked three times: it can
        // only finish if the loop kept running meanwhile (an ordering, bounded by a timeout).
        let order = try await onLoop { loop -> [String] in
            let ticks = TickCounter()
            let log = Log<String>()
            let ticker = loop.add {
                while ticks.value < 3 {
                    try await loop.sleep(for: .milliseconds(2))
                    ticks.increment()
                    log.append("tick")
                }
            }
            log.append("offload")
            let waited = try await loop.offload { () -> Bool in
                let end = ContinuousClock.now + .seconds(20)
                while ticks.value < 3 && ContinuousClock.now < end { usleep(1000) }
                return ticks.value >= 3
            }
            log.append("offload done")
            #expect(waited)
            try await ticker.value
            return log.entries
        }
        #expect(order == ["offload", "tick", "tick", "tick", "offload done"])
    }

    @Test func inlineWorkHoldsTheLoop() async throws {
        // The contrast: the same wait made inline blocks the loop, so no tick happens during it.
        let order = try await onLoop { loop -> [String] in
            let log = Log<String>()
            let ticker = loop.add {
                for _ in 0..<3 {
                    try await loop.sleep(for: .milliseconds(1))
                    log.append("tick")
                }
            }
            log.append("inline")
            usleep(50_000)  // deliberately holds the loop's thread
            log.append("inline done")
            try await ticker.value
            return log.entries
        }
        #expect(order == ["inline", "inline done", "tick", "tick", "tick"])
    }
}

/// Lines recorded from tasks of a loop and read from outside it.
final class SendableLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// A counter that offloaded work (another thread) reads.
final class TickCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

@Suite("CooperativeLoop: lifetime")
struct CooperativeLoopLifetimeTests {
    @Test func aReleasedLoopStopsItsThread() async throws {
        var loop: CooperativeLoop? = CooperativeLoop()
        await loop!.add { loop in try await loop.sleep(for: .milliseconds(1)) }
        try await loop!.run(until: .now + .seconds(30))
        let reactor = loop!.reactor
        #expect(!reactor.hasExited)
        loop = nil  // the last reference
        for _ in 0..<2_000 where !reactor.hasExited { try await Task.sleep(for: .milliseconds(5)) }
        #expect(reactor.hasExited)
    }
}
