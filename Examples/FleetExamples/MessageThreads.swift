// MessageThreads.swift — the seed's first program ("threading"), ported to Foundation `Thread`.
//
// The Python original:
//
//     class MessageThread(Thread):
//         def __init__(self, message, sleep):
//             self.message = message
//             self.sleep = sleep
//             Thread.__init__(self)
//         def run(self):
//             i = 0
//             while i < 50:
//                 i += 1
//                 print i, self.message
//                 time.sleep(self.sleep)
//
//     t1 = MessageThread("thread - 1", 1)
//     t2 = MessageThread("thread - 2", 2)
//     t1.start()
//     t2.start()

import Foundation
import Synchronization

/// The seed's `MessageThread`: a thread that prints `"<i> <message>"` for `i` in `1...count`,
/// sleeping `sleep` seconds after each line.
///
/// Like Python's `threading.Thread`, ``start()`` runs ``run()`` on a new thread (a Foundation
/// `Thread`). Foundation's `Thread` has no `join`, so this class adds ``join()``, which blocks on
/// a semaphore (no busy waiting) until ``run()`` has returned.
///
/// (The seed subclasses `Thread`. This port wraps a Foundation `Thread` created with a block
/// instead: subclassing `Thread` is not possible with Swift 6.3 on Linux, where the compiler
/// cannot load one of `Thread`'s overridable members.)
///
/// Each line goes to the `output` closure, called on the message thread; pass a closure that is
/// safe to call from several threads at once (``MessageThreads/run(count:sleepScale:output:)``
/// wraps its output in a lock so lines from different threads never interleave).
public final class MessageThread: Sendable {
    /// The text printed after the counter on every line, e.g. `"thread - 1"`. Also the thread's `name`.
    public let message: String

    /// Seconds to sleep after each line (the seed's `sleep`: 1 for the first thread, 2 for the second).
    public let sleepInterval: TimeInterval

    /// How many lines to print (the seed hard-codes 50).
    public let count: Int

    private let output: @Sendable (String) -> Void
    private let started = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Creates a message thread; it does nothing until you call ``start()``.
    ///
    /// - Parameters:
    ///   - message: The text printed after the counter on every line.
    ///   - sleep: Seconds to sleep after each line.
    ///   - count: How many lines to print (default 50, as in the seed).
    ///   - output: Receives each line, called on the message thread. Defaults to printing on
    ///     standard output under a process-wide lock.
    public init(
        message: String,
        sleep: TimeInterval,
        count: Int = 50,
        output: @escaping @Sendable (String) -> Void = MessageThread.printLine
    ) {
        self.message = message
        self.sleepInterval = sleep
        self.count = count
        self.output = output
    }

    /// Starts a new thread, named ``message``, that calls ``run()``. Call it at most once
    /// (like Python's `Thread.start`); a second call is a programming error and traps.
    public func start() {
        let (exchanged, _) = started.compareExchange(expected: false, desired: true, ordering: .relaxed)
        precondition(exchanged, "MessageThread.start() called more than once")
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = message
        thread.start()
    }

    /// The thread's body (Python's `run`), executed on the calling thread: prints
    /// `"<i> <message>"` for `i` in `1...count`, sleeping ``sleepInterval`` seconds after each line.
    /// ``start()`` calls it on a new thread.
    public func run() {
        var i = 0
        while i < count {
            i += 1
            output("\(i) \(message)")
            Thread.sleep(forTimeInterval: sleepInterval)
        }
    }

    /// Blocks the calling thread until the thread begun by ``start()`` has finished ``run()``.
    /// Safe to call from several threads and more than once. Call it only after ``start()``,
    /// or it waits forever.
    public func join() {
        finished.wait()
        finished.signal()  // let any other joiner through too
    }

    private static let printLock = Mutex(())

    /// Prints `line` on standard output while holding a process-wide lock, so lines printed
    /// from different threads never interleave. The default `output` of ``init(message:sleep:count:output:)``.
    @Sendable public static func printLine(_ line: String) {
        printLock.withLock { _ in print(line) }
    }
}

/// The seed's "threading" program: two ``MessageThread``s, `"thread - 1"` sleeping 1 s and
/// `"thread - 2"` sleeping 2 s between lines, started together and joined.
public enum MessageThreads {
    /// The two threads of the seed as `(message, sleep seconds)`: `("thread - 1", 1)` and `("thread - 2", 2)`.
    public static let seedThreads: [(message: String, sleep: TimeInterval)] = [
        ("thread - 1", 1),
        ("thread - 2", 2),
    ]

    /// Runs the seed's program and returns when both threads have finished.
    ///
    /// Starts one ``MessageThread`` per entry of ``seedThreads``, each printing `count` lines and
    /// sleeping `sleep * sleepScale` seconds after each, then joins both (blocking, without busy
    /// waiting). Calls to `output` are serialized by a lock, so it is never called by two threads
    /// at once and lines never interleave; `output` is not retained after this function returns.
    ///
    /// With the defaults this takes as long as the seed: 50 lines, about 100 seconds.
    ///
    /// - Parameters:
    ///   - count: Lines per thread (the seed's 50).
    ///   - sleepScale: Multiplies the seed's sleeps (1 s and 2 s); e.g. `0.05` for a quick demo.
    ///   - output: Receives each line, e.g. `"3 thread - 2"`. Defaults to `print`.
    public static func run(
        count: Int = 50,
        sleepScale: Double = 1.0,
        output: @escaping (String) -> Void = { print($0) }
    ) {
        precondition(count >= 0, "count must not be negative")
        precondition(sleepScale >= 0, "sleepScale must not be negative")
        let serialized = SerializedOutput(output)
        let threads = seedThreads.map { spec in
            MessageThread(message: spec.message, sleep: spec.sleep * sleepScale, count: count) { line in
                serialized.emit(line)
            }
        }
        for thread in threads { thread.start() }
        for thread in threads { thread.join() }
    }

    /// Runs the seed's program from async code and returns when both threads have finished.
    ///
    /// The same program as the synchronous ``run(count:sleepScale:output:)``, but the calling
    /// task suspends while the threads run instead of blocking a thread of Swift's cooperative
    /// pool (the joins happen on a dedicated thread). `output` is called under a lock, one line
    /// at a time, from the message threads.
    ///
    /// - Parameters:
    ///   - count: Lines per thread (the seed's 50).
    ///   - sleepScale: Multiplies the seed's sleeps (1 s and 2 s); e.g. `0.05` for a quick demo.
    ///   - output: Receives each line, e.g. `"3 thread - 2"`. Defaults to `print`.
    public static func run(
        count: Int = 50,
        sleepScale: Double = 1.0,
        output: @escaping @Sendable (String) -> Void = { print($0) }
    ) async {
        await runOnDedicatedThread(name: "message-threads") {
            run(count: count, sleepScale: sleepScale, output: output)
        }
    }
}

/// Calls a (non-Sendable) closure from several threads, one call at a time.
final class SerializedOutput: @unchecked Sendable {
    // @unchecked Sendable: `body` is only ever called while holding `lock`.
    private let lock = NSLock()
    private let body: (String) -> Void

    init(_ body: @escaping (String) -> Void) { self.body = body }

    func emit(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        body(line)
    }
}
