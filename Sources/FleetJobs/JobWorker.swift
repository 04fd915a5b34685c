import Distributed
import FleetActors
import FleetWire
import Foundation

/// The actor a worker process hosts: runs ``JobFunction``s by name for its job server, one at a
/// time on a thread of its own (never on the connection's event loop).
distributed actor JobWorker {
    typealias ActorSystem = FleetActorSystem

    private let threads = LocalWorkerPool(workers: 1)

    /// Runs the job function whose type has the mangled name `function` on `input` (its
    /// `Input`, binary-encoded) and returns its `Output`, binary-encoded.
    ///
    /// - Throws: the function's own error; ``JobWorkerError`` when the name is unknown here or
    ///   the bytes do not decode.
    distributed func run(function: String, input: [UInt8]) async throws -> [UInt8] {
        try await threads.runPortable(function: function, input: input)
    }
}

extension LocalWorkerPool {
    /// Runs the job function with the mangled name `function` on one of the pool's threads,
    /// decoding its input and encoding its output with the binary coder.
    func runPortable(function: String, input: [UInt8]) async throws -> [UInt8] {
        guard let type = _typeByName(function) as? any JobFunction.Type else {
            throw JobWorkerError.unknownFunction(function)
        }
        return try await withCheckedThrowingContinuation { continuation in
            let accepted = submit(LocalWorkerPool.Item(
                run: { continuation.resume(with: Result { try Self.execute(type, input) }) },
                abandon: { continuation.resume(throwing: JobError.serverShutDown) }
            ))
            if !accepted { continuation.resume(throwing: JobError.serverShutDown) }
        }
    }

    private static func execute<F: JobFunction>(_ function: F.Type, _ bytes: [UInt8]) throws -> [UInt8] {
        let input: F.Input
        do {
            input = try BinaryDecoder().decode(F.Input.self, from: bytes)
        } catch {
            throw JobWorkerError.undecodableInput("\(F.self): \(error)")
        }
        return try BinaryEncoder().encode(F.run(input))
    }
}

/// Why a worker could not run a job it was sent.
public enum JobWorkerError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    /// The worker's executable has no job function of that (mangled) name: it is another build.
    case unknownFunction(String)
    /// The job's input did not decode as the function's `Input`.
    case undecodableInput(String)

    public var description: String {
        switch self {
        case let .unknownFunction(name): "the worker has no job function \(name) (a different build?)"
        case let .undecodableInput(detail): "the worker could not decode the job's input: \(detail)"
        }
    }
}

/// The actor a job server publishes for its worker processes: each worker attaches its
/// ``JobWorker`` and stays attached until the server lets it go.
distributed actor JobCoordinator {
    typealias ActorSystem = FleetActorSystem

    static let publishedName = "fleet.jobs.coordinator"

    private let attach: @Sendable (JobWorker, UInt64) async -> Void

    init(actorSystem: FleetActorSystem, attach: @escaping @Sendable (JobWorker, UInt64) async -> Void) {
        self.actorSystem = actorSystem
        self.attach = attach
    }

    /// Attaches a worker started with `token`; returns when the server lets the worker go.
    distributed func attach(_ worker: JobWorker, token: UInt64) async {
        await attach(worker, token)
    }
}
