#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FleetActors
import FleetWire
import Foundation
import Synchronization

/// Whole programs a node runs for launchers (the ranks `fleet launch --hosts` places here), beside
/// the job servers' worker processes.
extension JobNodeService {
    /// Runs executable `digest` with `arguments` and the node's environment plus `environment`;
    /// sends its output to `output` as it comes and returns how it ended once all of it is sent.
    /// Cancelling the call (the launcher went away, or gave up) kills the program, as does a
    /// failure to deliver its output.
    ///
    /// - Throws: ``JobNodeError/unknownExecutable(_:)``; ``JobNodeError/cannotStart(_:)``;
    ///   `CancellationError`; the errors of calls to `output`.
    func runProgram(
        executable digest: String, key: ProgramKey, arguments: [String], environment: [String: String],
        output: ProgramOutput
    ) async throws -> ProcessEnding {
        guard hasExecutable(digest) else { throw JobNodeError.unknownExecutable(digest) }
        var pipes: [(read: Int32, write: Int32)] = []
        let process: ChildProcess
        do {
            for _ in 0..<2 { pipes.append(try makeChildPipe()) }
            // A group of its own: killing the program kills what it started, too.
            process = try ChildProcess.spawn(
                executable: path(of: digest).path, arguments: arguments,
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                output: pipes[0].write, errors: pipes[1].write, ownGroup: true)
        } catch {
            for pair in pipes { close(pair.read); close(pair.write) }
            throw JobNodeError.cannotStart("\(error)")
        }
        for pair in pipes { close(pair.write) }
        let ending = ProgramEnd()
        let pieces = OutputPipes(output: pipes[0].read, errors: pipes[1].read)
        process.whenEnded { result in
            ending.set(result)
            // What the program left behind in its group goes with it; the pipes then close,
            // unless something outside the group holds them: after a second, stop reading.
            process.signalGroup(SIGKILL)
            pieces.abandon(after: .seconds(1))
        }
        programs.withLock { $0[key] = process }
        defer { programs.withLock { $0[key] = nil } }

        return try await withTaskCancellationHandler {
            do {
                for await (bytes, stream) in pieces.stream {
                    defer { pieces.sent(bytes.count) }
                    try Task.checkCancellation()
                    // The launcher's terminal may hold its output a while (a pager); a launcher
                    // that is gone fails the call at once (the connection is lost).
                    try await RemoteCall.with(timeout: .seconds(3600)) {
                        try await output.write(bytes, to: stream)
                    }
                }
                try Task.checkCancellation()
                return await ending.value
            } catch {
                process.signalGroup(SIGKILL)
                pieces.stopWaiting()
                _ = await ending.value
                throw error
            }
        } onCancel: {
            process.signalGroup(SIGKILL)
            pieces.stopWaiting()
        }
    }

    /// Sends `signal` to the program `key` names, if it runs here; returns whether it does.
    func signalProgram(_ key: ProgramKey, signal: Int32) -> Bool {
        guard let process = programs.withLock({ $0[key] }) else { return false }
        process.signalGroup(signal)
        return true
    }

    /// Kills every program running here (the node is shutting down; their calls then return
    /// how they ended).
    func killPrograms() {
        for process in programs.withLock({ Array($0.values) }) { process.signalGroup(SIGKILL) }
    }
}

/// Names a program a node runs: the launcher's token and its number for the program.
struct ProgramKey: Hashable, Sendable {
    var client: UInt64
    var ticket: UInt64
}

/// How a program ended, once it has: awaited by its call.
private final class ProgramEnd: Sendable {
    private let state = Mutex<(ending: ProcessEnding?, waiters: [CheckedContinuation<ProcessEnding, Never>])>((nil, []))

    func set(_ ending: ProcessEnding) {
        let waiters = state.withLock { state in
            state.ending = ending
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: ending) }
    }

    var value: ProcessEnding {
        get async {
            await withCheckedContinuation { continuation in
                let ending: ProcessEnding? = state.withLock { state in
                    if let ending = state.ending { return ending }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ending { continuation.resume(returning: ending) }
            }
        }
    }
}

/// A program's two output pipes, read by a thread each into one stream of pieces; the stream
/// ends when both pipes are closed (the program, and all it left them to, ended), or once
/// ``abandon(after:)``'s time has passed. At most ``maximumPending`` bytes wait to be sent: a
/// reader waits for ``sent(_:)`` beyond that, and the program then waits on its full pipe.
private final class OutputPipes: Sendable {
    let stream: AsyncStream<([UInt8], ProgramStream)>
    /// When to stop reading (CLOCK_MONOTONIC), once the program has ended; 0 until then.
    private let deadline = Atomic<UInt64>(0)
    /// Bytes read and not yet sent; readers wait on it.
    private let pending = PendingOutput()
    static let maximumPending = 4 << 20

    init(output: Int32, errors: Int32) {
        let (stream, continuation) = AsyncStream<([UInt8], ProgramStream)>.makeStream()
        self.stream = stream
        let open = OpenPipes()
        for (fd, kind) in [(output, ProgramStream.standardOutput), (errors, .standardError)] {
            let thread = Thread { [self] in
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                while true {
                    let ready = poll(&poller, 1, 100)
                    if ready == 0 {
                        let deadline = deadline.load(ordering: .acquiring)
                        if deadline != 0, Self.now() >= deadline { break }
                        continue
                    }
                    if ready < 0 { if errno == EINTR { continue } else { break } }
                    let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if count < 0, errno == EINTR || errno == EAGAIN { continue }
                    if count <= 0 { break }
                    pending.add(count, waitingBelow: Self.maximumPending)
                    continuation.yield((Array(chunk[..<count]), kind))
                }
                close(fd)
                if open.closeOne() { continuation.finish() }
            }
            thread.name = "fleet-node-program-output"
            thread.start()
        }
    }

    /// `count` bytes were sent on.
    func sent(_ count: Int) {
        pending.remove(count)
    }

    /// Nobody sends any more: readers stop waiting for room.
    func stopWaiting() {
        pending.open()
    }

    /// The program ended: read what is still coming for `grace` at most.
    func abandon(after grace: Duration) {
        let nanoseconds = UInt64(grace.components.seconds) * 1_000_000_000 + UInt64(grace.components.attoseconds / 1_000_000_000)
        deadline.store(Self.now() + nanoseconds, ordering: .releasing)
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// How many of a program's output pipes are still open.
private final class OpenPipes: Sendable {
    private let count = Mutex(2)

    /// One more is closed; returns whether it was the last.
    func closeOne() -> Bool {
        count.withLock { count in
            count -= 1
            return count == 0
        }
    }
}

/// Output read and not yet sent, for ``OutputPipes``' readers to wait on: blocking waits, on the
/// readers' own threads.
private final class PendingOutput: @unchecked Sendable {
    // @unchecked Sendable: `bytes` and `unlimited` are read and written only while `condition`
    // is locked.
    private let condition = NSCondition()
    private var bytes = 0
    private var unlimited = false

    /// Adds `count` bytes, first waiting while `limit` or more are pending.
    func add(_ count: Int, waitingBelow limit: Int) {
        condition.lock()
        defer { condition.unlock() }
        while !unlimited && bytes >= limit { condition.wait() }
        bytes += count
    }

    func remove(_ count: Int) {
        condition.lock()
        defer { condition.unlock() }
        bytes -= count
        condition.broadcast()
    }

    /// No more waiting, ever.
    func open() {
        condition.lock()
        defer { condition.unlock() }
        unlimited = true
        condition.broadcast()
    }
}
