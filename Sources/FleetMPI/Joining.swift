import NIOCore
import Synchronization

/// The connections of a rank that is joining: the accepted ones as they identify themselves,
/// and, once the world exists, where closes and goodbyes go.
final class Joining: Sendable {
    private struct State {
        var accepted: [Int: any Channel] = [:]
        var waiter: CheckedContinuation<[Int: any Channel], any Error>?
        var failure: (any Error)?
        var world: World?
        /// Goodbyes and closes that came before the world existed.
        var early: [RankLinkEvent] = []
    }
    private let expected: Int
    private let loop: any EventLoop
    private let state = Mutex(State())

    init(expected: Int, loop: any EventLoop) {
        self.expected = expected
        self.loop = loop
    }

    func accepted(_ peer: Int, _ channel: any Channel) -> Bool {
        let (ok, ready) = state.withLock { state -> (Bool, (CheckedContinuation<[Int: any Channel], any Error>, [Int: any Channel])?) in
            guard state.accepted[peer] == nil, state.world == nil else { return (false, nil) }
            state.accepted[peer] = channel
            guard state.accepted.count == expected, let waiter = state.waiter else { return (true, nil) }
            state.waiter = nil
            return (true, (waiter, state.accepted))
        }
        if let (waiter, accepted) = ready { waiter.resume(returning: accepted) }
        return ok
    }

    func fail(_ error: any Error) {
        let waiter = state.withLock { state in
            if state.failure == nil { state.failure = error }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error)
    }

    func everyoneAccepted(timeout: Duration) async throws -> [Int: any Channel] {
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) { [self] in
            fail(CommunicatorError.notLaunched("not every rank connected within \(timeout)"))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<[Int: any Channel], any Error>? = state.withLock { state in
                if let failure = state.failure { return .failure(failure) }
                if state.accepted.count == expected { return .success(state.accepted) }
                state.waiter = continuation
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    func handle(_ event: RankLinkEvent) {
        let world = state.withLock { state -> World? in
            if state.world == nil { state.early.append(event) }
            return state.world
        }
        if let world { return world.handle(event) }
        if case let .closed(peer?, false) = event {
            fail(CommunicatorError.rankFailed(rank: peer, reason: "its connection closed while the ranks were connecting"))
        }
    }

    func hand(to world: World) {
        let early = state.withLock { state in
            state.world = world
            defer { state.early = [] }
            return state.early
        }
        for event in early { world.handle(event) }
    }
}
