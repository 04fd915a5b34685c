import Distributed
import FleetWire
import NIOCore
import Synchronization

/// One authenticated connection between two actor systems, as seen from any thread: calls go
/// out through it, replies to calls it brought in go back through it.
///
/// The state lives in its ``ActorConnectionHandler`` on the channel's event loop; this type
/// only hops there.
final class ActorConnection: Sendable {
    let channel: any Channel
    /// Where this side dialled the peer; `nil` for a connection the peer opened.
    let dialledEndpoint: Endpoint?
    private let handler: NIOLoopBound<ActorConnectionHandler>
    private let callIDs = Atomic<UInt64>(0)
    private let introduced = Mutex<Introduced?>(nil)
    /// This process's holds on the peer's actors, by actor number.
    private let holdings = Mutex<[UInt64: WeakHolding]>([:])

    private struct WeakHolding {
        weak var reference: HeldReference?
    }

    /// What is known once the peer introduced itself.
    struct Introduced: Sendable {
        let peer: NodeID
        /// Decodes what arrives on this connection: knows the actor system and the origin.
        let decoder: BinaryDecoder
    }

    var eventLoop: any EventLoop { channel.eventLoop }
    /// Runs tasks on the connection's event loop; what it queues there ends the loop's busy poll.
    let executor: EventLoopTaskExecutor

    /// Created on the channel's event loop, with its handler.
    init(channel: any Channel, handler: ActorConnectionHandler, executor: EventLoopTaskExecutor, dialledEndpoint: Endpoint?) {
        self.channel = channel
        self.executor = executor
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        self.dialledEndpoint = dialledEndpoint
    }

    /// The peer's node, once it introduced itself.
    var peer: NodeID? { introduced.withLock { $0?.peer } }

    /// The decoder for replies and arguments arriving here; set when the peer introduced itself.
    var decoder: BinaryDecoder? { introduced.withLock { $0?.decoder } }

    func didIntroduce(peer: NodeID, system: FleetActorSystem) {
        var decoder = BinaryDecoder()
        decoder.userInfo = [
            .actorSystemKey: system,
            .fleetConnection: ConnectionOrigin(peer: peer, dialledEndpoint: dialledEndpoint, connection: self),
        ]
        introduced.withLock { $0 = Introduced(peer: peer, decoder: decoder) }
    }

    /// The hold on the peer's actor `number`, whose ID just arrived here: the one that copies of
    /// its ID already share, or a new one.
    func holdReference(to number: UInt64) -> HeldReference {
        holdings.withLock { holdings in
            if let held = holdings[number]?.reference {
                held.arrived()
                return held
            }
            let held = HeldReference(number: number, connection: self)
            holdings[number] = WeakHolding(reference: held)
            return held
        }
    }

    /// The last copy of an ID that arrived here `count` times is gone: the peer may let its
    /// actor go (unless the ID is on its way here once more).
    func released(_ number: UInt64, count: UInt64) {
        holdings.withLock { holdings in
            if holdings[number]?.reference == nil { holdings[number] = nil }
        }
        let handler = self.handler
        executor.execute { handler.value.sendRelease(number, count: count) }
    }

    /// A fresh ID for a call on this connection.
    func nextCallID() -> UInt64 {
        callIDs.add(1, ordering: .relaxed).newValue
    }

    /// Sends a call and waits for its reply's payload (positioned after the call ID).
    ///
    /// - Parameters:
    ///   - payload: the call, with `id` (from ``nextCallID()``) already in its first 8 bytes.
    /// - Throws: ``RemoteCallError/timedOut(after:)``, ``RemoteCallError/connectionLost(reason:)``,
    ///   `CancellationError` when the task is cancelled (the peer is told to stop).
    func call(
        _ frame: ByteBuffer, id: UInt64, timeout: Duration, keepingAlive actors: [any DistributedActor] = []
    ) async throws -> ByteBuffer {
        let call = PendingCall(id: id, timeout: timeout)
        let handler = self.handler
        let executor = self.executor
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                if executor.eventLoop.inEventLoop {
                    handler.value.start(call, continuation, payload: frame, keepingAlive: actors)
                } else {
                    executor.execute { handler.value.start(call, continuation, payload: frame, keepingAlive: actors) }
                }
            }
        } onCancel: {
            executor.execute { handler.value.cancel(call) }
        }
    }

    /// Sends the reply to the call `callID` that this connection brought in; `actors` (local
    /// actors the reply refers to) are kept alive while the connection is open.
    func reply(_ payload: ByteBuffer, to callID: UInt64, keepingAlive actors: [any DistributedActor] = []) {
        if eventLoop.inEventLoop {
            handler.value.reply(payload, to: callID, keepingAlive: actors)
        } else {
            let handler = self.handler
            executor.execute { handler.value.reply(payload, to: callID, keepingAlive: actors) }
        }
    }

    /// Closes the connection; calls waiting on it fail with `error`.
    func close(failingCallsWith error: any Error) {
        let handler = self.handler
        executor.execute { handler.value.close(failingCallsWith: error) }
    }
}
