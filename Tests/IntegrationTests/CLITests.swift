import Foundation
import Testing

/// Runs the built `fleet` executable as a user would and checks what it prints and returns.
@Suite("fleet CLI", .serialized)
struct CLITests {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The directory holding the package's built products (where the test bundle is).
    static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    /// Runs `fleet` with `arguments`, killing it (by PID) if it runs past `seconds`.
    func fleet(_ arguments: [String], seconds: Double = 60) async throws -> Outcome {
        let executable = Self.productsDirectory.appendingPathComponent("fleet")
        try #require(FileManager.default.isExecutableFile(atPath: executable.path),
                     "fleet was not built at \(executable.path)")
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
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
        let stdout = Task { String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        let stderr = Task { String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        for await _ in finished {}
        watchdog.cancel()
        return Outcome(status: process.terminationStatus, stdout: await stdout.value, stderr: await stderr.value)
    }

    @Test func helpListsEverySubcommand() async throws {
        let outcome = try await fleet(["--help"])
        #expect(outcome.status == 0)
        for name in ["demo", "serve", "launch", "status", "bench"] {
            #expect(outcome.stdout.contains(name), "help lacks \(name)")
        }
        for name in ["demo", "serve", "launch", "status", "bench"] {
            let sub = try await fleet([name, "--help"])
            #expect(sub.status == 0, "\(name) --help failed: \(sub.stderr)")
            #expect(sub.stdout.contains("USAGE"))
        }
    }

    @Test(arguments: [
        ["demo", "jobs"], ["demo", "rpc"], ["demo", "mpi"], ["demo", "cooperative"],
        ["serve", "--port", "0"], ["launch", "-n", "2", "--", "true"], ["status", "127.0.0.1:1"],
        ["bench", "rpc"], ["bench", "jobs"], ["bench", "echo"], ["bench", "mpi"],
    ])
    func notYetBuiltSubcommandsFailWithOneLine(arguments: [String]) async throws {
        let outcome = try await fleet(arguments)
        #expect(outcome.status != 0, "\(arguments) claimed success")
        let lines = outcome.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(arguments): \(outcome.stderr)")
        #expect(outcome.stderr.contains("not available yet"))
    }

    @Test func demoThreadsRuns() async throws {
        let outcome = try await fleet(["demo", "threads", "--count", "3", "--sleep-scale", "0.001"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("thread - 1"))
        #expect(outcome.stdout.contains("thread - 2"))
    }

    @Test func unknownSectionIsAUsageError() async throws {
        let outcome = try await fleet(["demo", "nonsense"])
        #expect(outcome.status != 0)
        #expect(!outcome.stderr.isEmpty)
    }
}
