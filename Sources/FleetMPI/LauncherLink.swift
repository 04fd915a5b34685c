import FleetWire
import NIOCore
import Synchronization

/// A rank's connection to its launcher: registers the rank, receives the table of every rank's
/// address, then stays open: the launcher sends ``LaunchMessage/abort(rank:reason:)`` when a
/// rank fails, and the rank says at the end whether it finished or failed.
final class LauncherLink: Sendable {
    private typealias Outgoing = (message: LaunchMessage, sent: CheckedContinuation<Void, Never>)
    private let outgoing: AsyncStream<Outgoing>.Continuation
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let lost = Mutex<(handler: (@Sendable (String) -> Void)?, reason: String?)>((nil, nil))

    private init(outgoing: AsyncStream<Outgoing>.Continuation) {
        self.outgoing = outgoing
    }

    /// Connects, registers `rank` at `endpoint`, and returns once the table has come.
    ///
    /// - Parameter abort: called (on a connection thread) when the launcher says a rank failed.
    static func connect(
        to launcher: Endpoint, configuration: WireConfiguration, rank: Int, endpoint: Endpoint,
        abort: @escaping @Sendable (Int, String) -> Void
    ) async throws -> (LauncherLink, table: [String]) {
        let (stream, continuation) = AsyncStream<Outgoing>.makeStream()
        let link = LauncherLink(outgoing: continuation)
        let table: [String] = try await withCheckedThrowingContinuation { tableContinuation in
            let task = Task {
                let handOver = Mutex<CheckedContinuation<[String], any Error>?>(tableContinuation)
                func handOverTable(_ outcome: Result<[String], any Error>) {
                    handOver.withLock { continuation in
                        defer { continuation = nil }
                        return continuation
                    }?.resume(with: outcome)
                }
                var reason = "the launcher closed the connection"
                do {
                    try await WireClient.withConnection(to: launcher, configuration: configuration) { connection in
                        try await connection.send(Frame(kind: .message, encoding: LaunchMessage.register(rank: rank, endpoint: endpoint.description)))
                        await withTaskGroup(of: Void.self) { group in
                            group.addTask {
                                for await (message, sent) in stream {
                                    if let frame = try? Frame(kind: .message, encoding: message) { try? await connection.send(frame) }
                                    sent.resume()
                                }
                            }
                            do {
                                for try await frame in connection.inbound {
                                    switch try frame.decode(LaunchMessage.self) {
                                    case let .table(table): handOverTable(.success(table))
                                    case let .abort(rank, why): abort(rank, why)
                                    default: break
                                    }
                                }
                            } catch is CancellationError {
                                reason = ""
                            } catch {
                                reason = Task.isCancelled ? "" : "\(error)"
                            }
                            continuation.finish()
                        }
                    }
                } catch {
                    reason = "cannot reach the launcher at \(launcher): \(error)"
                }
                if Task.isCancelled { reason = "" }
                handOverTable(.failure(CommunicatorError.launcherLost(reason.isEmpty ? "cancelled" : reason)))
                if !reason.isEmpty { link.connectionLost(reason) }
            }
            link.task.withLock { $0 = task }
        }
        return (link, table)
    }

    private func connectionLost(_ reason: String) {
        let handler = lost.withLock { lost in
            lost.reason = reason
            return lost.handler
        }
        handler?(reason)
    }

    /// Runs `handler` when the connection to the launcher is lost (now, if it already was).
    func whenLost(_ handler: @escaping @Sendable (String) -> Void) {
        let reason = lost.withLock { lost in
            lost.handler = handler
            return lost.reason
        }
        if let reason { handler(reason) }
    }

    /// Sends `message`; returns once it is written (or the connection is gone).
    func send(_ message: LaunchMessage) async {
        await withCheckedContinuation { (sent: CheckedContinuation<Void, Never>) in
            if case .terminated = outgoing.yield((message, sent)) { sent.resume() }
        }
    }

    /// Closes the connection.
    func close() async {
        outgoing.finish()
        let task = task.withLock { $0 }
        task?.cancel()
        await task?.value
    }
}
