import CWasteTime
import Synchronization
import Testing

@testable import FleetExamples

@Suite("CWasteTime: the seed's C loop")
struct CWasteTimeTests {
    @Test(
        "returns the number of even i in 0..<iterations",
        arguments: [
            (UInt64(0), UInt64(0)),
            (1, 1),
            (2, 1),
            (10, 5),
            (11, 6),
            (1_000_001, 500_001),
        ]
    )
    func count(iterations: UInt64, expected: UInt64) {
        #expect(fleet_waste_time(iterations) == expected)
        #expect(WasteTime.expectedCount(iterations: iterations) == expected)
        #expect(WasteTime.wasteTime(iterations: iterations) == expected)
    }

    @Test("the loop really runs: 64x the iterations takes clearly longer")
    func loopIsNotOptimizedAway() {
        let clock = ContinuousClock()
        let short = clock.measure { _ = fleet_waste_time(1 << 16) }
        let long = clock.measure { _ = fleet_waste_time(1 << 22) }
        #expect(long > short)
    }
}

@Suite("MessageThreads: the seed's threading example")
struct MessageThreadsTests {
    @Test("count 3: six lines, three per thread, each thread's in order")
    func threeLinesEach() {
        var lines: [String] = []
        MessageThreads.run(count: 3, sleepScale: 0.001) { lines.append($0) }

        #expect(lines.count == 6)
        #expect(lines.filter { $0.hasSuffix(" thread - 1") } == ["1 thread - 1", "2 thread - 1", "3 thread - 1"])
        #expect(lines.filter { $0.hasSuffix(" thread - 2") } == ["1 thread - 2", "2 thread - 2", "3 thread - 2"])
    }

    @Test("count 0 prints nothing and still returns")
    func zeroCount() {
        var lines: [String] = []
        MessageThreads.run(count: 0, sleepScale: 0) { lines.append($0) }
        #expect(lines.isEmpty)
    }

    @Test("a MessageThread joins after printing its lines")
    func singleThreadJoin() {
        let collected = ResultSlots<String>(count: 2)
        let counter = Counter()
        let thread = MessageThread(message: "solo", sleep: 0, count: 2) { line in
            _ = collected.store(line, at: counter.next())
        }
        #expect(thread.message == "solo")
        thread.start()
        thread.join()
        thread.join()  // joining twice is fine
        #expect(collected.values == ["1 solo", "2 solo"])
    }
}

@Suite("WasteTime: 1 thread vs N threads, and the cooperative pool", .serialized)
struct WasteTimeTests {
    @Test("a small run reports sensible positive times")
    func smallRun() async {
        let result = await WasteTime.measureThreads(iterations: 1 << 20, threads: 2, rounds: 2)
        #expect(result.iterations == 1 << 20)
        #expect(result.threads == 2)
        #expect(result.rounds == 2)
        #expect(result.singleThread == result.singleThreadSamples.min())
        #expect(result.singleThread > .zero)
        #expect(result.parallel > .zero)
        #expect(result.speedup > 0)
        #expect(result.speedup.isFinite)
    }

    @Test("run prints the three report lines, with measured figures")
    func runReport() async {
        var lines: [String] = []
        let (scaling, pool) = await WasteTime.run(iterations: 1 << 18, threads: 2, rounds: 1, poolDemo: false) {
            lines.append($0)
        }
        #expect(pool == nil)
        #expect(scaling.threads == 2)
        #expect(lines.contains { $0.hasPrefix("1 thread: ") && $0.hasSuffix(" s") })
        #expect(lines.contains { $0.hasPrefix("2 threads: ") && $0.hasSuffix(" s") })
        #expect(lines.contains { $0.hasPrefix("speedup: ") && $0.hasSuffix("(ideal 2x; CPython threads on the same loop: 0.43x)") })
    }

    @Test("speedup is N x t1 / tN, from the best sample of each run")
    func speedupFormula() {
        let result = WasteTimeResult(iterations: 1, threads: 2, singleThread: .seconds(1), parallel: .milliseconds(1250))
        #expect(abs(result.speedup - 1.6) < 1e-9)

        let best = WasteTimeResult(
            iterations: 1,
            threads: 2,
            singleThreadSamples: [.seconds(2), .seconds(1), .seconds(3)],
            parallelSamples: [.seconds(1), .milliseconds(1250), .seconds(4)]
        )
        #expect(best.rounds == 3)
        #expect(best.singleThread == .seconds(1))
        #expect(best.parallel == .seconds(1))
        #expect(abs(best.speedup - 2.0) < 1e-9)
    }

    @Test("blocking the cooperative pool delays a heartbeat more than offloading does")
    func poolStarvation() async {
        // About 2^26 iterations: tens of milliseconds per call, several heartbeat intervals.
        let result = await WasteTime.measurePoolStarvation(
            iterations: 1 << 26,
            tasks: WasteTime.defaultPoolTasks,
            heartbeatInterval: .milliseconds(5)
        )
        #expect(result.blockingOnPool.workDuration > .zero)
        #expect(result.offloaded.workDuration > .zero)
        #expect(result.offloaded.ticks >= 1)
        #expect(result.blockingOnPool.worstDelay > result.offloaded.worstDelay)
    }

    @Test("runOnDedicatedThreads returns every result in index order")
    func dedicatedThreads() async {
        let values = await runOnDedicatedThreads(count: 4, name: "test") { $0 * 10 }
        #expect(values == [0, 10, 20, 30])
        let one = await runOnDedicatedThread { 42 }
        #expect(one == 42)
    }
}

/// A thread-safe counter handing out 0, 1, 2, …
private final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
}
