import FleetWire
import Foundation
import Testing

/// What a finished process printed and returned.
struct Outcome {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The directory holding the package's built products (where the test bundle is).
let productsDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

/// The path of the built product `name`; records an issue when it was not built.
func product(_ name: String) throws -> URL {
    let executable = productsDirectory.appendingPathComponent(name)
    try #require(FileManager.default.isExecutableFile(atPath: executable.path), "\(name) was not built at \(executable.path)")
    return executable
}

/// Runs the product `name` to completion, killing it (by PID) if it runs past `seconds`.
func run(
    _ name: String, _ arguments: [String], environment: [String: String] = [:], seconds: Double = 60
) async throws -> Outcome {
    try await runExecutable(try product(name).path, arguments, environment: environment, seconds: seconds)
}

/// Runs the executable at `path` to completion, killing it (by PID) if it runs past `seconds`.
func runExecutable(
    _ path: String, _ arguments: [String], environment: [String: String] = [:], seconds: Double = 60
) async throws -> Outcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let finished = AsyncStream<Void> { continuation in
        process.terminationHandler = { _ in continuation.finish() }
    }
    try process.run()
    let watchdog = Task {
        try await Task.sleep(for: .seconds(seconds))
        kill(process.processIdentifier, SIGKILL)
    }
    // Blocking reads run on their own threads, never on Swift's cooperative pool.
    async let stdout = onDedicatedThread { String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
    async let stderr = onDedicatedThread { String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
    for await _ in finished {}
    watchdog.cancel()
    return Outcome(status: process.terminationStatus, stdout: await stdout, stderr: await stderr)
}

/// Runs blocking `body` on a new thread and suspends until it returns, so that tests never block
/// Swift's cooperative pool (other tests measure what it does).
func onDedicatedThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs blocking `body` on a new thread and suspends until it returns.
func onDedicatedThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// A server process that prints `listening on HOST:PORT` once it serves; ``stop()`` ends it by
/// PID (closing its input, then SIGTERM, then SIGKILL). Create and stop it with
/// ``start(_:_:environment:)`` and ``stop()``, which keep their blocking waits off the pool.
final class ServingProcess: Sendable {
    let process: Process
    private let input: Pipe
    let endpoint: Endpoint

    var pid: Int32 { process.processIdentifier }

    /// Starts the process and waits (on a dedicated thread) for its `listening on` line.
    static func start(_ name: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ServingProcess {
        try await start(executable: try product(name), arguments, environment: environment)
    }

    /// Starts the executable at `executable` and waits for its `listening on` line.
    static func start(executable: URL, _ arguments: [String], environment: [String: String] = [:]) async throws -> ServingProcess {
        try await onDedicatedThread { try ServingProcess(executable, arguments, environment: environment) }
    }

    private init(_ executable: URL, _ arguments: [String], environment: [String: String]) throws {
        let name = executable.lastPathComponent
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }
        var line: [UInt8] = []
        while line.last != UInt8(ascii: "\n") {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            line.append(contentsOf: byte)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("listening on "), let endpoint = try? Endpoint(String(text.dropFirst("listening on ".count))) else {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            throw ProcessError(message: "\(name) did not start: '\(text)'")
        }
        self.endpoint = endpoint
    }

    /// Sends `signal` to the process.
    func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Ends the process and waits for it, on a dedicated thread.
    func stop() async {
        await onDedicatedThread { self.stopNow() }
    }

    /// Ends the process and waits for it, blocking the calling thread.
    func stopNow() {
        try? input.fileHandleForWriting.close()
        kill(pid, SIGCONT)   // A stopped process cannot act on the SIGTERM below.
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    struct ProcessError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// Runs `body` with a started ``ServingProcess``, stopping it (by PID) whatever happens.
func withServingProcess<Result>(
    _ name: String, _ arguments: [String], environment: [String: String] = [:],
    _ body: (ServingProcess) async throws -> Result
) async throws -> Result {
    let process = try await ServingProcess.start(name, arguments, environment: environment)
    do {
        let result = try await body(process)
        await process.stop()
        return result
    } catch {
        await process.stop()
        throw error
    }
}

/// Runs `body` with a new, empty directory for the files `JobTestPeer`'s `Record` jobs leave,
/// one per run; removes the directory afterwards.
func withMarkerDirectory<Result>(_ body: (URL) async throws -> Result) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-job-runs-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// `fleet launch ARGUMENTS -- MPITestPeer SCENARIO`, running: its PID, then its outcome
/// (``finish()``); killed by PID if it runs past 90 s.
final class RunningLaunch: Sendable {
    private let process: Process
    private let output: Pipe
    private let errors: Pipe
    private let watchdog: Task<Void, any Error>

    var pid: Int32 { process.processIdentifier }

    init(_ arguments: [String], scenario: String, secret: String) throws {
        process = Process()
        process.executableURL = try product("fleet")
        process.arguments = ["launch"] + arguments + ["--", try product("MPITestPeer").path, scenario]
        process.environment = ProcessInfo.processInfo.environment.merging(["FLEET_SECRET": secret]) { $1 }
        output = Pipe()
        errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let pid = process.processIdentifier
        watchdog = Task {
            try await Task.sleep(for: .seconds(90))
            kill(pid, SIGKILL)
        }
    }

    /// Waits for the launch to end (reading its output on threads of their own).
    func finish() async throws -> Outcome {
        let (out, err, process) = (output, errors, process)
        async let stdout = onDedicatedThread { String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        async let stderr = onDedicatedThread { String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        let (text, errorText) = await (stdout, stderr)
        await onDedicatedThread { process.waitUntilExit() }
        watchdog.cancel()
        return Outcome(status: process.terminationStatus, stdout: text, stderr: errorText)
    }
}

/// The processes whose parent is `parent` (from /proc).
func children(of parent: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry),
              let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // pid (comm) state ppid …: the command may hold spaces and parentheses.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == parent ? pid : nil
    }
}

/// Waits (up to 60 s) until `parent` has `count` children; returns them.
func waitForChildren(of parent: Int32, count: Int) async throws -> [Int32] {
    for _ in 0..<600 {
        let found = children(of: parent)
        if found.count >= count { return found }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw ChildrenMissing(parent: parent, count: count)
}

struct ChildrenMissing: Error, CustomStringConvertible {
    var parent: Int32
    var count: Int
    var description: String { "process \(parent) did not get \(count) children within 60 s" }
}

/// Records an issue for each of `ranks` still running after `seconds`, and kills it.
func expectEnded(_ ranks: [Int32], within seconds: Int = 10) async throws {
    for _ in 0..<(seconds * 10) where ranks.contains(where: { kill($0, 0) == 0 }) {
        try await Task.sleep(for: .milliseconds(100))
    }
    for pid in ranks where kill(pid, 0) == 0 {
        Issue.record("rank process \(pid) still runs")
        kill(pid, SIGKILL)
    }
}
