@testable import FleetCooperative
import Testing

@Suite("CooperativeQueue")
struct QueueTests {
    @Test func putWaitsWhileTheQueueIsFull() async throws {
        let (events, maxDepth) = try await onLoop { loop -> ([String], Int) in
            let queue = CooperativeQueue<Int>(capacity: 2, loop: loop)
            let log = Log<String>()
            var maxDepth = 0
            let producer = loop.add {
                for item in 0..<6 {
                    try await queue.put(item, timeout: .seconds(10))
                    maxDepth = max(maxDepth, queue.count)
                    log.append("put \(item)")
                }
            }
            // Let the producer fill the queue and block.
            for _ in 0..<5 { await loop.yield() }
            log.append("consumer starts")
            for expected in 0..<6 {
                let item = try await queue.get(timeout: .seconds(10))
                #expect(item == expected)
                log.append("got \(item)")
                await loop.yield()
            }
            try await producer.value
            return (log.entries, maxDepth)
        }
        #expect(maxDepth <= 2)
        // Two puts fit; the third waits for the consumer.
        #expect(Array(events.prefix(3)) == ["put 0", "put 1", "consumer starts"])
        #expect(events.firstIndex(of: "put 2")! > events.firstIndex(of: "got 0")!)
        #expect(events.filter { $0.hasPrefix("got") } == (0..<6).map { "got \($0)" })
    }

    @Test func getWaitsForAPutAndWaitersAreServedInOrder() async throws {
        let order = try await onLoop { loop -> [String] in
            let queue = CooperativeQueue<String>(capacity: 1, loop: loop)
            let log = Log<String>()
            var getters: [CooperativeTask<Void>] = []
            for name in ["a", "b", "c"] {
                getters.append(loop.add { log.append("\(name) got \(try await queue.get())") })
            }
            await loop.yield()
            for item in ["1", "2", "3"] { try await queue.put(item) }
            for getter in getters { try await getter.value }
            return log.entries
        }
        #expect(order == ["a got 1", "b got 2", "c got 3"])
    }

    @Test func timeoutsAndCancellation() async throws {
        try await onLoop { loop in
            let queue = CooperativeQueue<Int>(capacity: 1, loop: loop)
            let error13 = await caught {
                _ = try await queue.get(timeout: .milliseconds(10))
            }
            #expect(error13 as? Timeout == Timeout(operation: "get", after: .milliseconds(10)))
            try await queue.put(1)
            let error14 = await caught { try await queue.put(2, timeout: .milliseconds(10)) }
            #expect(error14 is Timeout)
            #expect(queue.count == 1)  // the timed-out put added nothing
            #expect(try await queue.get() == 1)

            // A cancelled getter gives up its place; the next put goes to the live one.
            let cancelled = loop.add { try await queue.get() }
            let live = loop.add { try await queue.get() }
            await loop.yield()
            cancelled.cancel()
            let error15 = await caught { _ = try await cancelled.value }
            #expect(error15 is CancellationError)
            try await queue.put(7)
            #expect(try await live.value == 7)
            #expect(queue.isEmpty)
        }
    }

    @Test func nonSendableElements() async throws {
        try await onLoop { loop in
            final class Box { var value = 0 }
            let queue = CooperativeQueue<Box>(capacity: 4, loop: loop)
            let box = Box()
            try await queue.put(box)
            let same = try await queue.get()
            same.value = 9
            #expect(box.value == 9)
        }
    }
}
