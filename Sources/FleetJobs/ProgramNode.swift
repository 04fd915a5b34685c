#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FleetActors
import FleetWire
import Synchronization

/// A `fleet serve` node as a place to run whole programs: where `fleet launch --hosts` starts
/// the ranks it places on other hosts. The program is shipped as a job server ships itself (by
/// SHA-256, only when the node lacks it); each ``start(arguments:environment:output:)`` runs it
/// as a process of its own there.
package final class ProgramNode: Sendable {
    /// The node's address, as given.
    package let endpoint: Endpoint
    /// The node's worker count (`fleet serve --workers`): its slots, unless told otherwise.
    package let workers: Int
    private let node: JobNode
    private let digest: String
    /// Names this launcher to the node, which with a program's ticket names the program.
    private let client = UInt64.random(in: .min ... .max)
    private let tickets = Atomic<UInt64>(0)

    private init(endpoint: Endpoint, workers: Int, node: JobNode, digest: String) {
        self.endpoint = endpoint
        self.workers = workers
        self.node = node
        self.digest = digest
    }

    /// Reaches the node at `endpoint` through `system`, checks it can run the executable at
    /// `path`, and ships it there if need be.
    ///
    /// - Throws: ``JobError/nodeIncompatible(_:)``; the connection's errors (unreachable,
    ///   rejected: a wrong secret); ``JobNodeError``; file errors reading `path`.
    package static func attach(_ endpoint: Endpoint, shipping path: String, system: FleetActorSystem) async throws -> ProgramNode {
        let program = ShippedProgram(path: path)
        let (node, info) = try await JobNode.attach(at: endpoint, system: system, shipping: program)
        return ProgramNode(endpoint: endpoint, workers: info.workers, node: node, digest: try program.digest())
    }

    /// Starts the program on the node with `arguments` and `environment` (over the node's
    /// own); its output goes to `output`, in order.
    package func start(
        arguments: [String], environment: [String: String],
        output: @escaping @Sendable ([UInt8], ProgramStream) -> Void
    ) -> RemoteProgram {
        let ticket = tickets.add(1, ordering: .relaxed).newValue
        let (node, digest, client) = (node, digest, client)
        let run = Task {
            let sink = ProgramOutput(actorSystem: node.actorSystem, sink: output)
            // The program runs as long as it runs: no deadline on the call; losing the node
            // (heartbeats) or cancelling ends it.
            let ending = try await RemoteCall.with(timeout: .seconds(100 * 365 * 24 * 3600)) {
                try await node.runProgram(
                    executable: digest, client: client, ticket: ticket, arguments: arguments,
                    environment: environment, output: sink)
            }
            withExtendedLifetime(sink) {}   // The node calls it back until the program ends.
            return ending
        }
        return RemoteProgram(run: run) { signal in
            Task { _ = try? await node.signalProgram(client: client, ticket: ticket, signal: signal) }
        }
    }
}

/// A program running on a node (``ProgramNode/start(arguments:environment:output:)``).
package final class RemoteProgram: Sendable {
    private let run: Task<ProcessEnding, any Error>
    private let signaller: @Sendable (Int32) -> Void

    init(run: Task<ProcessEnding, any Error>, signal: @escaping @Sendable (Int32) -> Void) {
        self.run = run
        self.signaller = signal
    }

    /// How the program ended, once it has and all its output has arrived.
    ///
    /// - Throws: the call's errors when the node was lost (`RemoteCallError`), or could not
    ///   start the program (``JobNodeError``): then nothing is known of how it ended.
    package var ending: ProcessEnding {
        get async throws { try await run.value }
    }

    /// Sends `signal` to the program and its process group (SIGINT, SIGTERM, …), if it still
    /// runs. SIGKILL also cancels the call, which kills the program even before the node has it
    /// running.
    package func signal(_ signal: Int32) {
        signaller(signal)
        if signal == SIGKILL { run.cancel() }
    }

    /// Stops waiting for the program; the node kills it.
    package func cancel() {
        run.cancel()
    }
}
