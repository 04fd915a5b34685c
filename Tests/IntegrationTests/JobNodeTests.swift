import FleetActorsTestSupport
import FleetWire
import Foundation
import Testing

/// `fleet serve` nodes on loopback running jobs shipped by `JobTestPeer`.
@Suite("Job server with fleet serve nodes", .serialized)
struct JobNodeTests {
    static let secret = "node-secret-\(UInt64.random(in: 0 ... .max))"

    /// Runs `body` with `count` nodes, each with its own cache directory, stopped by PID after;
    /// `arguments` go to every node's `fleet serve`, and `secrets` (one per node) replace
    /// ``secret``.
    func withNodes(
        _ count: Int, arguments: [String] = [], secrets: [String]? = nil, _ body: ([ServingProcess], [URL]) async throws -> Void
    ) async throws {
        var nodes: [ServingProcess] = []
        var caches: [URL] = []
        do {
            for index in 0..<count {
                let cache = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-node-cache-\(UUID())")
                caches.append(cache)
                nodes.append(try await ServingProcess.start(
                    "fleet", ["serve", "--port", "0", "--workers", "2", "--cache-dir", cache.path] + arguments,
                    environment: ["FLEET_SECRET": secrets?[index] ?? Self.secret]))
            }
            try await body(nodes, caches)
        } catch {
            for node in nodes { await node.stop() }
            for cache in caches { try? FileManager.default.removeItem(at: cache) }
            throw error
        }
        for node in nodes { await node.stop() }
        for cache in caches { try? FileManager.default.removeItem(at: cache) }
    }

    @Test func aNodeReceivesTheProgramOnceAndRunsItsJobs() async throws {
        try await withNodes(1) { nodes, caches in
            let address = nodes[0].endpoint.description
            let first = try await run("JobTestPeer", ["nodes", address], environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stdout.contains("naps: 60 done, total 1260 ms"), "\(first.stdout)")
            #expect(first.stdout.contains("refused: Refused(remote)"))
            // The stats count the time the naps ran (1,260 ms), not the time they waited at the
            // node behind others (pipelined): far from 60 round trips' worth.
            let jobTime = first.stdout.split(separator: "\n").first { $0.hasPrefix("job time: ") }
                .flatMap { Int($0.dropFirst("job time: ".count).dropLast(" ms".count)) }
            #expect(jobTime.map { (1_260..<3_780).contains($0) } == true, "\(first.stdout)")
            #expect(first.stdout.contains("| \(address)"))
            let cached = try FileManager.default.contentsOfDirectory(atPath: caches[0].path)
            #expect(cached.count == 1 && cached[0].count == 64, "\(cached)")
            let shipped = try FileManager.default.attributesOfItem(atPath: caches[0].appendingPathComponent(cached[0]).path)[.modificationDate] as? Date

            // The second run finds the executable cached: nothing is sent again.
            let second = try await run("JobTestPeer", ["nodes", address], environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.stdout.contains("naps: 60 done"))
            let again = try FileManager.default.attributesOfItem(atPath: caches[0].appendingPathComponent(cached[0]).path)[.modificationDate] as? Date
            #expect(shipped == again)

            let status = try await run("fleet", ["status", address], environment: ["FLEET_SECRET": Self.secret])
            #expect(status.status == 0, "\(status.stderr)")
            #expect(status.stdout.contains("2 workers per program"))
            #expect(status.stdout.contains("| \(cached[0].prefix(12))"))
        }
    }

    @Test func nodesThatAnnounceThemselvesAreFoundAndRunTheJobs() async throws {
        let port = try unusedLoopbackPort(SOCK_DGRAM)
        // Two nodes under the job server's secret, one under another: that one is never linked.
        let announce = ["--announce", "--announce-address", "127.0.0.1:\(port)", "--announce-interval", "0.2"]
        try await withNodes(3, arguments: announce, secrets: [Self.secret, Self.secret, "another-\(Self.secret)"]) { nodes, _ in
            let outcome = try await run("JobTestPeer", ["discover", "\(port)"], environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("naps: 40 done, total 840 ms"), "\(outcome.stdout)")
            // The stats name both nodes found (at least one of them ran jobs), never the stranger.
            #expect(outcome.stdout.contains("| \(nodes[0].endpoint)"), "\(outcome.stdout)")
            #expect(outcome.stdout.contains("| \(nodes[1].endpoint)"), "\(outcome.stdout)")
            #expect(!outcome.stdout.contains("\(nodes[2].endpoint)"), "\(outcome.stdout)")
        }
    }

    @Test func wrongSecretRunsNothing() async throws {
        try await withNodes(1) { nodes, caches in
            let outcome = try await run("JobTestPeer", ["nodes", nodes[0].endpoint.description],
                                        environment: ["FLEET_SECRET": "not-the-node-secret"], seconds: 30)
            // No node will have it: the jobs cannot run, and nothing was shipped.
            #expect(outcome.status != 0 || !outcome.stdout.contains("naps: 60 done"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: caches[0].path).isEmpty)
            let status = try await run("fleet", ["status", nodes[0].endpoint.description], environment: ["FLEET_SECRET": "nope-nope"])
            #expect(status.status != 0)
            #expect(status.stderr.contains("secret"))
        }
    }

    @Test func aNodeKilledMidRunLosesNoJob() async throws {
        try await withNodes(2) { nodes, _ in
            let addresses = nodes.map(\.endpoint.description)
            async let outcome = run("JobTestPeer", ["nodes"] + addresses, environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            try await Task.sleep(for: .milliseconds(700))
            nodes[0].signal(SIGKILL)
            let result = try await outcome
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("naps: 60 done, total 1260 ms"), "\(result.stdout)")
        }
    }

    @Test func aNodeStoppedInOrderMidRunHandsItsJobsBack() async throws {
        try await withNodes(2) { nodes, _ in
            let addresses = nodes.map(\.endpoint.description)
            async let outcome = run("JobTestPeer", ["nodes"] + addresses, environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            try await Task.sleep(for: .milliseconds(700))
            nodes[0].signal(SIGTERM)
            let result = try await outcome
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("naps: 60 done, total 1260 ms"), "\(result.stdout)")
        }
    }

    @Test func cancellingAJobRunningOnANodeStopsItsWorkerThere() async throws {
        try await withNodes(1) { nodes, _ in
            let outcome = try await run("JobTestPeer", ["cancelnode", nodes[0].endpoint.description],
                                        environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("cancelled: error JobError the job was cancelled"), "\(outcome.stdout)")
            #expect(outcome.stdout.contains("timed out: error JobError the job did not finish within 1.0 seconds"), "\(outcome.stdout)")
            #expect(outcome.stdout.contains("after: 2870"))
            // Both node workers held a 20 s nap: the jobs after them ran only because the node
            // stopped those workers and started others.
            #expect(outcome.stdout.contains("done within 10 s: true"), "\(outcome.stdout)")
        }
    }

    @Test func cancellingAJobWaitingInANodesWorkerMeansItNeverRuns() async throws {
        try await withMarkerDirectory { directory in try await withNodes(1) { nodes, _ in
            let outcome = try await run("JobTestPeer", ["cancelqueuednode", nodes[0].endpoint.description],
                                        environment: ["FLEET_SECRET": Self.secret, "JOB_TEST_DIR": directory.path], seconds: 120)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("workers up: 2"), "\(outcome.stdout)")
            #expect(outcome.stdout.contains("waiting job: error JobError the job was cancelled"), "\(outcome.stdout)")
            // Each node worker held one job behind its running one; cancelled there, neither ran.
            #expect(outcome.stdout.contains("started first: 2, cancelled: 2, cancelled that ran: 0"), "\(outcome.stdout)")
        } }
    }

    @Test func garbageToTheNodesPortLeavesItServing() async throws {
        try await withNodes(1) { nodes, _ in
            try sendRaw(Array("GET / HTTP/1.0\r\n\r\n".utf8), to: nodes[0].endpoint)
            let outcome = try await run("JobTestPeer", ["nodes", nodes[0].endpoint.description],
                                        environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            #expect(outcome.stdout.contains("naps: 60 done"))
        }
    }
}
