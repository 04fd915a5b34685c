import FleetJobs
import FleetMPI
import FleetWire
import Foundation
import Synchronization

extension Communicator {
    /// Runs a Parallel Python program on the ranks of this communicator — mpi4py's
    /// `MPIPoolExecutor`: on rank `root`, `body` gets a ``JobServer`` whose workers are the
    /// other ranks; they run its ``JobFunction`` jobs until `body` returns. A collective call:
    /// every rank makes it.
    ///
    /// The same program then runs unchanged on a laptop (a world of one rank: the jobs run on
    /// this process's threads), under `fleet launch -n N`, and under `mpirun`/`srun` on a
    /// cluster (the trait `MPI`):
    ///
    /// ```swift
    /// try await Communicator.withWorld { world in
    ///     let sums = try await world.withJobServer { server in
    ///         let jobs = inputs.map { server.submit(SumPrimes.self, $0) }
    ///         var sums: [Int] = []
    ///         for job in jobs { sums.append(try await job.value) }
    ///         server.printStats()           // one row per worker rank
    ///         return sums
    ///     }
    ///     if let sums { print(sums) }       // rank 0 only
    /// }
    /// ```
    ///
    /// Jobs travel as on every other Fleet worker: by function identity with binary-coded
    /// arguments, over one authenticated connection per worker rank (a fresh secret for each
    /// farm, sent over the communicator), so every rank must run the same executable. Closures
    /// (``JobServer/submit(group:timeout:callback:_:)``) run on one thread of the root rank.
    /// A job that times out or is cancelled while a rank runs it finishes there and its result
    /// is dropped (a rank is not stopped for it). A worker rank that dies fails the job it was
    /// running with ``JobError/workerCrashed(_:)`` (or runs it elsewhere, when retryable); the
    /// other worker ranks go on with the root's jobs until `body` returns, and then every rank
    /// fails with the communicator's error naming the dead rank, as for any failed rank (under
    /// `fleet launch`, give a `--grace` long enough for the jobs to finish). Inside `body`, use
    /// the server, not the communicator: the other ranks are busy working.
    ///
    /// - Returns: what `body` returned on the root rank; `nil` on the others.
    /// - Throws: `body`'s error on the root; on a worker rank, why it could not work for the
    ///   root (unreachable, or the root went away); communicator errors.
    public func withJobServer<Result: Sendable>(
        root: Int = 0, isolation: isolated (any Actor)? = #isolation, _ body: (JobServer) async throws -> Result
    ) async throws -> Result? {
        guard size > 1 else {
            let server = JobServer()
            do {
                let result = try await body(server)
                await server.shutdown()
                return result
            } catch {
                await server.shutdown()
                throw error
            }
        }
        let hosts = try await allgather(Self.hostName)
        let oneHost = Set(hosts).count == 1
        if rank == root {
            let workers = (0..<size).filter { $0 != root }
            let server: JobServer
            do {
                server = try await JobServer(awaitingWorkers: workers.map { "rank \($0)" }, on: oneHost ? "127.0.0.1" : "0.0.0.0")
            } catch {
                // The others wait for an invitation: tell them there is none.
                _ = try await bcast(FarmInvitation??.some(nil), root: root)
                throw error
            }
            let invitation = server.workerInvitation.map {
                FarmInvitation(host: oneHost ? "127.0.0.1" : hosts[root], port: $0.endpoint.port, secret: $0.secret, workers: workers)
            }
            let outcome: Swift.Result<Result, any Error>
            do {
                _ = try await bcast(FarmInvitation??.some(invitation), root: root)
                outcome = .success(try await body(server))
            } catch {
                outcome = .failure(error)
            }
            // Tell the workers the farm is over, and hear that they know, before the server
            // goes: then a worker whose connection to it closes knows that this is why.
            var farmEnd: (any Error)?
            do {
                try await endFarm(root: root)
            } catch {
                farmEnd = error
            }
            await server.shutdown()
            let result = try outcome.get()
            if let farmEnd { throw farmEnd }
            return result
        }
        guard let invitation = try await bcast(FarmInvitation??.none, root: root),
              let index = invitation.workers.firstIndex(of: rank)
        else {
            throw JobError.workersUnavailable("rank \(root) could not start its job server")
        }
        let endpoint = Endpoint(host: invitation.host, port: invitation.port)
        let farmOver = Atomic<Bool>(false)
        let rank = self.rank
        let serving = Task {
            do {
                try await JobServer.serveAsWorker(at: endpoint, secret: invitation.secret, token: UInt64(index + 1))
            } catch {
                // Once the farm is over, the root's server going away is how serving ends.
                guard !farmOver.load(ordering: .acquiring) else { return }
                throw JobError.workersUnavailable("rank \(rank) could not work for rank \(root)'s job server at \(endpoint): \(error)")
            }
        }
        do {
            // Heard before the barrier, which the root passes only once every worker has heard
            // it: the root's server is still up when the flag is set.
            try await endFarm(root: root) { farmOver.store(true, ordering: .releasing) }
        } catch {
            // Another rank failed: go on working for the root until it is done with the farm
            // (or gone), so that its jobs finish on the ranks that are left; then fail too.
            _ = await serving.result
            throw error
        }
        // The root shuts its server down now, which ends the worker; a failure before is the
        // rank's failure.
        try await serving.value
        return nil
    }

    /// The root says the farm is over (`heard` runs once this rank knows), and every rank has
    /// heard it when this returns.
    private func endFarm(root: Int, heard: () -> Void = {}) async throws {
        _ = try await bcast(rank == root ? true : nil, root: root)
        heard()
        try await barrier()
    }

    private static var hostName: String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return "localhost" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// What the root rank tells the others: where its job server takes workers, with which secret,
/// and which ranks are to attach (token: index + 1).
private struct FarmInvitation: Codable, Sendable {
    var host: String
    var port: Int
    var secret: String
    var workers: [Int]
}
