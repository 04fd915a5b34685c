import Synchronization

/// A process's hold on another node's actor, shared by every copy of the actor's ID that
/// arrived on one connection: the node that hosts the actor keeps it alive until the hold ends,
/// when the last copy (in a proxy, or stored by the program) is gone. RPyC's netref, counted.
///
/// The hold counts how many times the ID arrived; the release tells the host that count, so
/// that a copy the host sent meanwhile, still on its way, keeps the actor alive.
final class HeldReference: Sendable {
    let number: UInt64
    private weak let connection: ActorConnection?
    private let arrivals = Atomic<UInt64>(1)

    init(number: UInt64, connection: ActorConnection) {
        self.number = number
        self.connection = connection
    }

    /// The ID arrived once more.
    func arrived() {
        arrivals.add(1, ordering: .acquiringAndReleasing)
    }

    deinit {
        connection?.released(number, count: arrivals.load(ordering: .acquiring))
    }
}
