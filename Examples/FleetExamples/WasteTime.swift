// WasteTime.swift — the seed's "Writing (and indicating) threadsafe C extensions", ported.
//
// The seed's C function `waste_time()` spins through 1024*1024*1024 iterations. Called from
// Python threads it runs one thread at a time, because the caller holds the GIL, unless the
// wrapper releases the GIL with Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS.
//
// Swift has no GIL, so part 1 of this example simply calls the C function (CWasteTime's
// `fleet_waste_time`) on 1 thread and then on N threads at once and shows the N-fold speedup.
//
// Swift's nearest analogue of the GIL problem is the cooperative thread pool that runs async
// tasks: it has about one thread per core, and a task that makes a long blocking call keeps its
// thread from running any other task. Part 2 shows that: a heartbeat task stalls while the pool's
// threads are all stuck in the C loop, and keeps ticking once the same calls are moved off the
// pool onto dedicated threads — the Swift equivalent of wrapping the call in
// Py_BEGIN_ALLOW_THREADS.

import CWasteTime
import Foundation
import Synchronization

/// Measured times of the seed's C loop on one thread and on N threads at once.
///
/// Each round times one call on one thread, then N calls on N threads; ``singleThread`` and
/// ``parallel`` are the best (shortest) of the rounds, since on a shared machine noise only ever
/// adds time. All samples are kept.
public struct WasteTimeResult: Sendable, Equatable {
    /// Iterations of the C loop each thread ran.
    public let iterations: UInt64
    /// Number of threads in the parallel run (N).
    public let threads: Int
    /// Wall time of one call on one dedicated thread, one sample per round.
    public let singleThreadSamples: [Duration]
    /// Wall time of N calls, one per dedicated thread, started together (until the last
    /// finished), one sample per round.
    public let parallelSamples: [Duration]

    /// Creates a result from measured samples (at least one of each).
    public init(iterations: UInt64, threads: Int, singleThreadSamples: [Duration], parallelSamples: [Duration]) {
        precondition(!singleThreadSamples.isEmpty && !parallelSamples.isEmpty, "need at least one sample of each")
        self.iterations = iterations
        self.threads = threads
        self.singleThreadSamples = singleThreadSamples
        self.parallelSamples = parallelSamples
    }

    /// Creates a result from one measured round.
    public init(iterations: UInt64, threads: Int, singleThread: Duration, parallel: Duration) {
        self.init(iterations: iterations, threads: threads, singleThreadSamples: [singleThread], parallelSamples: [parallel])
    }

    /// Number of measured rounds.
    public var rounds: Int { min(singleThreadSamples.count, parallelSamples.count) }

    /// The best wall time of one call on one thread (t1).
    public var singleThread: Duration { singleThreadSamples.min()! }

    /// The best wall time of N calls on N threads at once (tN).
    public var parallel: Duration { parallelSamples.min()! }

    /// Throughput gain of the parallel run: `N × t1 / tN`. N threads doing N times the work in
    /// the time one thread does one share would score N (the ideal).
    public var speedup: Double {
        let parallelSeconds = parallel.inSeconds
        guard parallelSeconds > 0 else { return .infinity }
        return Double(threads) * singleThread.inSeconds / parallelSeconds
    }
}

/// How a heartbeat task fared while some tasks ran the seed's C loop.
public struct HeartbeatReport: Sendable, Equatable {
    /// The worst lateness of a heartbeat tick: how much later than `interval` after the previous
    /// tick the heartbeat actually ran.
    public let worstDelay: Duration
    /// How many ticks the heartbeat completed while the work ran (and one after).
    public let ticks: Int
    /// Wall time from starting the C calls until the last one returned.
    public let workDuration: Duration

    /// Creates a report from measured figures.
    public init(worstDelay: Duration, ticks: Int, workDuration: Duration) {
        self.worstDelay = worstDelay
        self.ticks = ticks
        self.workDuration = workDuration
    }
}

/// The outcome of the cooperative-pool starvation demo: the same C calls made on the pool
/// (blocking it) and offloaded to dedicated threads.
public struct PoolStarvationResult: Sendable, Equatable {
    /// Number of tasks that each made one C call.
    public let tasks: Int
    /// Iterations of the C loop per call.
    public let iterations: UInt64
    /// How often the heartbeat task wanted to tick.
    public let heartbeatInterval: Duration
    /// The heartbeat while the calls blocked the cooperative pool's threads.
    public let blockingOnPool: HeartbeatReport
    /// The heartbeat while the calls ran on dedicated threads and their tasks awaited them.
    public let offloaded: HeartbeatReport

    /// Creates a result from two measured reports.
    public init(
        tasks: Int,
        iterations: UInt64,
        heartbeatInterval: Duration,
        blockingOnPool: HeartbeatReport,
        offloaded: HeartbeatReport
    ) {
        self.tasks = tasks
        self.iterations = iterations
        self.heartbeatInterval = heartbeatInterval
        self.blockingOnPool = blockingOnPool
        self.offloaded = offloaded
    }
}

/// The seed's `waste_time` example: the C loop on 1 thread vs N threads, and the
/// cooperative-pool analogue of the GIL.
public enum WasteTime {
    /// The seed's loop length, `1024*1024*1024`.
    public static let seedIterations: UInt64 = 1 << 30

    /// Speedup of CPython threads running the same loop without releasing the GIL, as measured
    /// on the project's 2-core machine by a teammate (2 threads: 0.43x). Quoted for comparison;
    /// not measured by this program.
    public static let cpythonThreadSpeedup = 0.43

    /// The default number of threads for the parallel run: the number of active cores, at least 2.
    public static var defaultThreadCount: Int {
        max(2, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The default number of measuring rounds of ``measureThreads(iterations:threads:rounds:)``: 3.
    public static let defaultRounds = 3

    /// The default number of blocking tasks in the pool demo: the number of active cores, which is
    /// the width of Swift's cooperative thread pool.
    public static var defaultPoolTasks: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// What the C loop returns for `iterations`: the number of even `i` in `0..<iterations`.
    public static func expectedCount(iterations: UInt64) -> UInt64 {
        iterations / 2 + iterations % 2
    }

    /// Runs the seed's C loop once on the calling thread and returns its count. Blocks the
    /// calling thread for the whole loop; no lock is held, so other threads run meanwhile.
    public static func wasteTime(iterations: UInt64) -> UInt64 {
        fleet_waste_time(iterations)
    }

    /// Measures the C loop on 1 dedicated thread, then `threads` copies of it on `threads`
    /// dedicated threads started together, `rounds` times over.
    ///
    /// The threads are Foundation `Thread`s, not the Swift concurrency pool; the calling task
    /// suspends (does not block) while they run. Every call's result is checked against
    /// ``expectedCount(iterations:)``.
    ///
    /// - Parameters:
    ///   - iterations: Loop length per thread (the seed's is ``seedIterations``).
    ///   - threads: N, the number of threads in the parallel run (at least 1).
    ///   - rounds: How many times to measure both runs (at least 1); the result reports the best.
    public static func measureThreads(
        iterations: UInt64 = seedIterations,
        threads: Int = defaultThreadCount,
        rounds: Int = defaultRounds
    ) async -> WasteTimeResult {
        precondition(threads >= 1, "threads must be at least 1")
        precondition(rounds >= 1, "rounds must be at least 1")
        let expected = expectedCount(iterations: iterations)
        let clock = ContinuousClock()
        var singleSamples: [Duration] = []
        var parallelSamples: [Duration] = []

        for _ in 0..<rounds {
            let singleStart = clock.now
            let single = await runOnDedicatedThreads(count: 1, name: "waste_time") { _ in
                fleet_waste_time(iterations)
            }
            singleSamples.append(singleStart.duration(to: clock.now))

            let parallelStart = clock.now
            let parallel = await runOnDedicatedThreads(count: threads, name: "waste_time") { _ in
                fleet_waste_time(iterations)
            }
            parallelSamples.append(parallelStart.duration(to: clock.now))

            for n in single + parallel {
                precondition(n == expected, "fleet_waste_time(\(iterations)) returned \(n), expected \(expected)")
            }
        }
        return WasteTimeResult(
            iterations: iterations,
            threads: threads,
            singleThreadSamples: singleSamples,
            parallelSamples: parallelSamples
        )
    }

    /// Shows that blocking calls made inside Swift's cooperative thread pool starve other tasks,
    /// and that moving them onto dedicated threads fixes it.
    ///
    /// Runs two rounds. In each, a heartbeat task sleeps `heartbeatInterval` in a loop and records
    /// how late each wake-up is; once it ticks, `tasks` tasks each make one call of the C loop.
    /// - Round 1 (blocking on the pool): each task calls the C function directly, holding one pool
    ///   thread for the whole loop. With `tasks` ≥ pool width, the heartbeat cannot run until a
    ///   call returns, so its worst delay is about the loop's duration.
    /// - Round 2 (offloaded): each task runs the call on a dedicated thread and suspends until it
    ///   returns, leaving the pool free; the heartbeat's worst delay stays around a millisecond.
    ///
    /// - Parameters:
    ///   - iterations: Loop length per call.
    ///   - tasks: Number of blocking tasks; default ``defaultPoolTasks`` (the pool's width).
    ///   - heartbeatInterval: How often the heartbeat wants to tick.
    public static func measurePoolStarvation(
        iterations: UInt64 = seedIterations,
        tasks: Int = defaultPoolTasks,
        heartbeatInterval: Duration = .milliseconds(10)
    ) async -> PoolStarvationResult {
        precondition(tasks >= 1, "tasks must be at least 1")
        let blocking = await heartbeat(interval: heartbeatInterval, whileRunning: tasks) {
            // Wrong on purpose: a long synchronous call on a cooperative-pool thread.
            _ = fleet_waste_time(iterations)
        }
        let offloaded = await heartbeat(interval: heartbeatInterval, whileRunning: tasks) {
            // Right: the call runs on its own thread; this task suspends until it is done.
            _ = await runOnDedicatedThread(name: "waste_time") { fleet_waste_time(iterations) }
        }
        return PoolStarvationResult(
            tasks: tasks,
            iterations: iterations,
            heartbeatInterval: heartbeatInterval,
            blockingOnPool: blocking,
            offloaded: offloaded
        )
    }

    /// Runs the whole example and reports measured figures through `output`:
    /// ```
    /// 1 thread: X s
    /// N threads: Y s
    /// speedup: Z x (ideal N x; CPython threads on the same loop: 0.43x)
    /// ```
    /// followed, unless `poolDemo` is false, by the heartbeat's worst delay with the calls blocking
    /// the cooperative pool and with them offloaded to dedicated threads.
    ///
    /// - Parameters:
    ///   - iterations: Loop length per thread and per call (the seed's is ``seedIterations``).
    ///   - threads: N for the parallel run; default ``defaultThreadCount``.
    ///   - rounds: Measuring rounds of the thread comparison; the best of each is reported.
    ///   - poolDemo: Whether to run ``measurePoolStarvation(iterations:tasks:heartbeatInterval:)`` too.
    ///   - poolTasks: Blocking tasks in the pool demo; default ``defaultPoolTasks``.
    ///   - output: Receives each line of the report. Defaults to `print`.
    /// - Returns: The measured figures.
    @discardableResult
    public static func run(
        iterations: UInt64 = seedIterations,
        threads: Int = defaultThreadCount,
        rounds: Int = defaultRounds,
        poolDemo: Bool = true,
        poolTasks: Int = defaultPoolTasks,
        output: (String) -> Void = { print($0) }
    ) async -> (threads: WasteTimeResult, pool: PoolStarvationResult?) {
        output("fleet_waste_time: \(iterations) iterations per thread (the seed's waste_time, no GIL to release)")
        let scaling = await measureThreads(iterations: iterations, threads: threads, rounds: rounds)
        let best = scaling.rounds > 1 ? " (best of \(scaling.rounds))" : ""
        output("1 thread: \(format(scaling.singleThread.inSeconds)) s\(best)")
        output("\(scaling.threads) threads: \(format(scaling.parallel.inSeconds)) s\(best)")
        output(
            "speedup: \(format(scaling.speedup))x (ideal \(scaling.threads)x; "
                + "CPython threads on the same loop: \(format(cpythonThreadSpeedup))x)"
        )
        guard poolDemo else { return (scaling, nil) }

        let interval = Duration.milliseconds(10)
        output(
            "cooperative pool: \(poolTasks) task(s) each call fleet_waste_time while a heartbeat task "
                + "wants to tick every \(format(interval.inMilliseconds, digits: 0)) ms"
        )
        let pool = await measurePoolStarvation(iterations: iterations, tasks: poolTasks, heartbeatInterval: interval)
        output(
            "  blocking on the pool:    heartbeat worst delay \(format(pool.blockingOnPool.worstDelay.inMilliseconds, digits: 1)) ms"
                + " (calls took \(format(pool.blockingOnPool.workDuration.inMilliseconds, digits: 1)) ms, \(pool.blockingOnPool.ticks) ticks)"
        )
        output(
            "  offloaded to threads:    heartbeat worst delay \(format(pool.offloaded.worstDelay.inMilliseconds, digits: 1)) ms"
                + " (calls took \(format(pool.offloaded.workDuration.inMilliseconds, digits: 1)) ms, \(pool.offloaded.ticks) ticks)"
        )
        return (scaling, pool)
    }

    // MARK: - Internals

    /// Runs a heartbeat task alongside `tasks` copies of `work` in one task group and reports the
    /// heartbeat's worst lateness.
    static func heartbeat(
        interval: Duration,
        whileRunning tasks: Int,
        work: @escaping @Sendable () async -> Void
    ) async -> HeartbeatReport {
        let clock = ContinuousClock()
        let workDone = Flag()
        let (firstTick, firstTickContinuation) = AsyncStream<Void>.makeStream()

        return await withTaskGroup(of: HeartbeatReport?.self) { group in
            group.addTask {
                var worst = Duration.zero
                var ticks = 0
                var last = clock.now
                while true {
                    do { try await Task.sleep(for: interval) } catch { break }
                    let now = clock.now
                    let lateness = now - (last + interval)
                    if lateness > worst { worst = lateness }
                    ticks += 1
                    last = now
                    if ticks == 1 {
                        firstTickContinuation.yield()
                        firstTickContinuation.finish()
                    }
                    if workDone.isSet { break }
                }
                // workDuration is filled in by the parent.
                return HeartbeatReport(worstDelay: worst, ticks: ticks, workDuration: .zero)
            }

            // Start the work only once the heartbeat is ticking.
            for await _ in firstTick { break }

            let workStart = clock.now
            for _ in 0..<tasks {
                group.addTask {
                    await work()
                    return nil
                }
            }
            var finished = 0
            var workDuration = Duration.zero
            var report: HeartbeatReport?
            while let result = await group.next() {
                if let result {
                    report = result
                } else {
                    finished += 1
                    if finished == tasks {
                        workDuration = workStart.duration(to: clock.now)
                        workDone.set()
                    }
                }
            }
            let beat = report!
            return HeartbeatReport(worstDelay: beat.worstDelay, ticks: beat.ticks, workDuration: workDuration)
        }
    }

    private static func format(_ value: Double, digits: Int = 2) -> String {
        String(format: "%.\(digits)f", value)
    }
}

// MARK: - Running blocking work on dedicated threads

/// Runs `body` on a new dedicated `Thread` and suspends the calling task (without blocking a
/// cooperative-pool thread) until it returns.
///
/// This is the Swift counterpart of wrapping a C call in `Py_BEGIN_ALLOW_THREADS`: blocking or
/// CPU-heavy work leaves the pool free for other tasks. (FleetCooperative will provide the real,
/// public `offload`; this is the example's local helper.)
func runOnDedicatedThread<T: Sendable>(
    name: String? = nil,
    _ body: @escaping @Sendable () -> T
) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        let thread = Thread {
            continuation.resume(returning: body())
        }
        if let name { thread.name = name }
        thread.start()
    }
}

/// Runs `body(0)`, …, `body(count - 1)` on `count` new dedicated threads, started together,
/// and suspends the calling task until all have returned. Results are in index order.
func runOnDedicatedThreads<T: Sendable>(
    count: Int,
    name: String? = nil,
    _ body: @escaping @Sendable (Int) -> T
) async -> [T] {
    precondition(count >= 1, "count must be at least 1")
    let results = ResultSlots<T>(count: count)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        for index in 0..<count {
            let thread = Thread {
                let value = body(index)
                if results.store(value, at: index) {
                    continuation.resume()  // the last thread to finish wakes the caller
                }
            }
            if let name { thread.name = "\(name)-\(index + 1)" }
            thread.start()
        }
    }
    return results.values
}

/// Thread-safe result slots; ``store(_:at:)`` reports when the last slot was filled.
final class ResultSlots<T: Sendable>: Sendable {
    private let state: Mutex<(values: [T?], remaining: Int)>

    init(count: Int) {
        state = Mutex((Array(repeating: nil, count: count), count))
    }

    /// Stores `value` at `index`; returns true for the call that fills the last empty slot.
    func store(_ value: T, at index: Int) -> Bool {
        state.withLock { state in
            state.values[index] = value
            state.remaining -= 1
            return state.remaining == 0
        }
    }

    /// All values; call only after every slot was filled.
    var values: [T] {
        state.withLock { state in state.values.map { $0! } }
    }
}

/// A thread-safe one-way flag.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    /// Sets the flag.
    func set() { value.store(true, ordering: .releasing) }

    /// Whether ``set()`` was called.
    var isSet: Bool { value.load(ordering: .acquiring) }
}
