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
        for _ in 0..<2 {
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else {
                for pair in pipes { close(pair.read); close(pair.write) }
                throw JobNodeError.cannotStart("no pipe for its output: \(String(cString: strerror(errno)))")
            }
            // Only the program gets the write end (as its 1 or 2), and nobody the read end.
            for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            pipes.append((ends[0], ends[1]))
        }
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(
                executable: path(of: digest).path, arguments: arguments,
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                output: pipes[0].write, errors: pipes[1].write)
        } catch {
            for pair in pipes { close(pair.read); close(pair.write) }
            throw JobNodeError.cannotStart("\(error)")
        }
        for pair in pipes { close(pair.write) }
        let ending = ProgramEnd()
        process.whenEnded { ending.set($0) }
        programs.withLock { $0[key] = process }
        defer { programs.withLock { $0[key] = nil } }

        let pieces = OutputPipes.read(output: pipes[0].read, errors: pipes[1].read)
        do {
            try await withTaskCancellationHandler {
                for await (bytes, stream) in pieces {
                    try Task.checkCancellation()
                    try await output.write(bytes, to: stream)
                }
                try Task.checkCancellation()
            } onCancel: {
                process.signal(SIGKILL)
            }
        } catch {
            process.signal(SIGKILL)
            _ = await ending.value
            throw error
        }
        return await ending.value
    }

    /// Sends `signal` to the program `key` names, if it runs here; returns whether it does.
    func signalProgram(_ key: ProgramKey, signal: Int32) -> Bool {
        guard let process = programs.withLock({ $0[key] }) else { return false }
        process.signal(signal)
        return true
    }

    /// Kills every program running here (the node is shutting down; their calls then return
    /// how they ended).
    func killPrograms() {
        for process in programs.withLock({ Array($0.values) }) { process.signal(SIGKILL) }
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
/// ends when both pipes are closed (the program, and any child it left them to, exited).
private enum OutputPipes {
    static func read(output: Int32, errors: Int32) -> AsyncStream<([UInt8], ProgramStream)> {
        let (stream, continuation) = AsyncStream<([UInt8], ProgramStream)>.makeStream()
        let open = OpenPipes()
        for (fd, kind) in [(output, ProgramStream.standardOutput), (errors, .standardError)] {
            let thread = Thread {
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if count < 0, errno == EINTR { continue }
                    if count <= 0 { break }
                    continuation.yield((Array(chunk[..<count]), kind))
                }
                close(fd)
                if open.closeOne() { continuation.finish() }
            }
            thread.name = "fleet-node-program-output"
            thread.start()
        }
        return stream
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
