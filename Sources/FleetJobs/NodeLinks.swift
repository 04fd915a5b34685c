import FleetActors
import FleetWire
import Synchronization

/// A job server's links to `fleet serve` nodes: those it was given, and those it discovers
/// later (``NodeDiscovery``). Each node has one link at a time; a link that gives up ends, and
/// the node can join again when it is discovered again (unless it cannot run this program).
final class NodeLinks: Sendable {
    private let system: FleetActorSystem
    private let queue: PortableJobQueue
    private let program = ShippedProgram()
    /// Whether the jobs can do without the nodes: local workers take over, or more nodes may
    /// be discovered. Otherwise the queue fails when the last link gives up.
    private let canDoWithout: Bool
    private let state = Mutex(State())

    private struct State {
        var links: [Endpoint: Task<Void, Never>] = [:]
        /// Nodes that cannot run this program (another OS or architecture): not tried again.
        var incompatible: Set<Endpoint> = []
        /// Why links gave up, for the error when the last one goes.
        var reasons: [String] = []
        /// Every node that joined, in order, for the stats.
        var joined: [String] = []
        var closed = false
    }

    init(system: FleetActorSystem, queue: PortableJobQueue, canDoWithout: Bool) {
        self.system = system
        self.queue = queue
        self.canDoWithout = canDoWithout
    }

    /// Links the node at `endpoint`, unless it is linked already (or known not to fit). A node
    /// given by name (`discovered` false) has its row in the stats at once; a discovered one once
    /// it has been reached: a replayed announcement from elsewhere adds no row.
    func add(_ endpoint: Endpoint, discovered: Bool = false) {
        let link = RemoteNodeLink(endpoint: endpoint, system: system, queue: queue, program: program)
        state.withLock { state in
            guard !state.closed, state.links[endpoint] == nil, !state.incompatible.contains(endpoint) else { return }
            // The task takes its own entry out when it ends, so it starts under the lock.
            state.links[endpoint] = Task { [self] in
                let end = await link.run { self.joined(endpoint) }
                linkEnded(endpoint, end)
            }
            if !discovered { Self.join(endpoint, &state) }
        }
    }

    private func joined(_ endpoint: Endpoint) {
        state.withLock { Self.join(endpoint, &$0) }
    }

    private static func join(_ endpoint: Endpoint, _ state: inout State) {
        let name = endpoint.description
        if !state.joined.contains(name) { state.joined.append(name) }
    }

    /// The nodes linked now.
    var linked: Set<Endpoint> { state.withLock { Set($0.links.keys) } }

    /// The names of the nodes that ever joined, in the order they did.
    var joined: [String] { state.withLock { $0.joined } }

    private func linkEnded(_ endpoint: Endpoint, _ end: RemoteNodeLink.End?) {
        let reasons: String? = state.withLock { state in
            state.links[endpoint] = nil
            guard let end else { return nil }
            if end.permanent { state.incompatible.insert(endpoint) }
            state.reasons.append(end.reason)
            if state.reasons.count > 8 { state.reasons.removeFirst() }   // The last few say enough.
            return state.links.isEmpty && !canDoWithout && !state.closed ? state.reasons.joined(separator: "; ") : nil
        }
        if let reasons {
            queue.close(failing: JobError.workersUnavailable("no node could run the jobs (\(reasons))"))
        }
    }

    /// Ends every link (after the queue was closed) and waits for them.
    func close() async {
        let tasks = state.withLock { state in
            state.closed = true
            return Array(state.links.values)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
