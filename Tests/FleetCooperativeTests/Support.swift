@testable import FleetCooperative
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` as the first task of a fresh loop, bounded in time: at `seconds` every task is
/// cancelled and the test fails instead of hanging.
func onLoop<T: Sendable>(
    seconds: Int = 30, _ body: @Sendable @escaping (isolated CooperativeLoop) async throws -> T
) async throws -> T {
    let loop = CooperativeLoop()
    let task = await loop.add(body)
    try await loop.run(until: .now + .seconds(seconds))
    return try await task.value
}

/// A non-Sendable, lock-free log that tasks of one loop share.
final class Log<Element> {
    var entries: [Element] = []
    func append(_ element: Element) { entries.append(element) }
}

/// An error for tests to throw.
struct Boom: Error, Equatable {
    var code: Int
}

/// The calling thread's id.
func currentThread() -> UInt { UInt(pthread_self()) }

/// Reads exactly `count` bytes from `connection`.
func recvExactly(
    _ connection: TCPConnection, _ count: Int, timeout: Duration? = .seconds(10),
    isolation: isolated (any Actor)? = #isolation
) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    while bytes.count < count {
        let chunk = try await connection.recv(max: min(65536, count - bytes.count), timeout: timeout)
        guard !chunk.isEmpty else { break }
        bytes += chunk
    }
    return bytes
}

/// A connected pair on loopback: (accepted side, connecting side).
func connectedPair(_ loop: isolated CooperativeLoop) async throws -> (server: TCPConnection, client: TCPConnection, listener: TCPListener) {
    let listener = try loop.listen(port: 0)
    let client = try await loop.connect(host: "127.0.0.1", port: listener.localPort, timeout: .seconds(5))
    let server = try await listener.accept(timeout: .seconds(5))
    return (server, client, listener)
}

/// The error `body` throws, or nil. (`#expect(throws:)` runs its closure off the loop, so tests
/// of loop-bound values use this instead; it runs `body` on the caller's executor.)
func caught(
    isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Void
) async -> (any Error)? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}
