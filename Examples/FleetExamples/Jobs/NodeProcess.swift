import FleetWire
import Foundation

/// A `fleet serve` node started on loopback for a demo or a benchmark: a child process of the
/// running `fleet`, with its own secret and cache directory, stopped by PID.
public final class NodeProcess: Sendable {
    private let process: Process
    /// Where the node listens.
    public let endpoint: Endpoint
    /// The secret the node expects.
    public let secret: String
    private let cacheDirectory: URL

    private init(process: Process, endpoint: Endpoint, secret: String, cacheDirectory: URL) {
        self.process = process
        self.endpoint = endpoint
        self.secret = secret
        self.cacheDirectory = cacheDirectory
    }

    /// Starts `fleet serve` (the executable at `fleet`) on a free loopback port with `workers`
    /// worker processes per program; waits (on a thread of its own) for it to listen.
    public static func start(fleet: String, workers: Int) async throws -> NodeProcess {
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max)) }.joined()
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-node-\(UUID())")
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    try NodeProcess.launch(fleet: fleet, workers: workers, secret: secret, cache: cache)
                })
            }.start()
        }
    }

    private static func launch(fleet: String, workers: Int, secret: String, cache: URL) throws -> NodeProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fleet)
        process.arguments = ["serve", "--port", "0", "--workers", String(workers), "--cache-dir", cache.path]
        var environment = ProcessInfo.processInfo.environment
        environment["FLEET_SECRET"] = secret
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let line = output.fileHandleForReading.readFirstLine()
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("listening on "), let endpoint = try? Endpoint(String(text.dropFirst("listening on ".count))) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw BenchError.serverDidNotStart(text)
        }
        return NodeProcess(process: process, endpoint: endpoint, secret: secret, cacheDirectory: cache)
    }

    /// The process ID, to stop it by.
    public var processIdentifier: Int32 { process.processIdentifier }

    /// Stops the node: SIGTERM, then SIGKILL after 5 s; removes its cache.
    public func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread { [self] in
                kill(process.processIdentifier, SIGTERM)
                let deadline = Date().addingTimeInterval(5)
                while process.isRunning, Date() < deadline { usleep(10_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
                try? FileManager.default.removeItem(at: cacheDirectory)
                continuation.resume()
            }.start()
        }
    }
}
