import Foundation

/// A benchmark's server: a child process that prints `ready PORT PORT PORT` (remote calls, raw
/// TCP echo, NIO echo) on its first line and
/// serves until its standard input closes. ``stop()`` closes that, then kills it by PID if it
/// lingers.
final class ServerProcess: Sendable {
    private let process: Process
    private let input: Pipe
    /// The ports the child announced.
    let rpcPort: Int
    let tcpPort: Int
    let nioPort: Int
    /// The port of the actor system whose connections never busy-poll.
    let unpolledPort: Int

    init(executable: String, arguments: [String], secret: String, startTimeout: Duration = .seconds(30)) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["FLEET_SECRET"] = secret
        process.environment = environment
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        // Whatever happens next, a child that does not announce itself in time is killed.
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + startTimeout.inSeconds, execute: watchdog)
        defer { watchdog.cancel() }
        let line = output.fileHandleForReading.readFirstLine()
        let words = String(decoding: line, as: UTF8.self).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard words.count == 5, words[0] == "ready", let rpc = Int(words[1]), let tcp = Int(words[2]), let nio = Int(words[3]),
              let unpolled = Int(words[4])
        else {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            throw BenchError.serverDidNotStart(String(decoding: line, as: UTF8.self))
        }
        rpcPort = rpc
        tcpPort = tcp
        nioPort = nio
        unpolledPort = unpolled
    }

    /// Ends the child: closes its input, waits up to 5 s, then kills it.
    func stop() {
        try? input.fileHandleForWriting.close()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

extension FileHandle {
    /// Reads up to and including the first newline, a byte at a time (so nothing after it is
    /// consumed), or to the end. Blocks: call it on a thread of its own.
    func readFirstLine() -> [UInt8] {
        var line: [UInt8] = []
        while line.last != UInt8(ascii: "\n") {
            let byte = readData(ofLength: 1)
            if byte.isEmpty { break }
            line.append(contentsOf: byte)
        }
        return line
    }
}
