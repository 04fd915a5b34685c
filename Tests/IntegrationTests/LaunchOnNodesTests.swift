import FleetActorsTestSupport
import FleetWire
import Foundation
import Testing

/// `fleet launch --hosts`: ranks placed on `fleet serve` nodes on loopback (each node a process
/// of its own, started and stopped by PID here), beside ranks on this machine.
@Suite("fleet launch with ranks on fleet serve nodes", .serialized)
struct LaunchOnNodesTests {
    static let secret = "launch-secret-\(UInt64.random(in: 0 ... .max))"

    /// Runs `body` with `count` nodes (`workers` each, a cache directory each), stopped by PID
    /// after.
    func withNodes(_ count: Int, workers: Int = 2, _ body: ([ServingProcess]) async throws -> Void) async throws {
        var nodes: [ServingProcess] = []
        var caches: [URL] = []
        defer { for cache in caches { try? FileManager.default.removeItem(at: cache) } }
        do {
            for _ in 0..<count {
                let cache = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-launch-cache-\(UUID())")
                caches.append(cache)
                nodes.append(try await ServingProcess.start(
                    "fleet", ["serve", "--port", "0", "--workers", "\(workers)", "--cache-dir", cache.path],
                    environment: ["FLEET_SECRET": Self.secret]))
            }
            try await body(nodes)
        } catch {
            for node in nodes { await node.stop() }
            throw error
        }
        for node in nodes { await node.stop() }
    }

    func launch(_ ranks: Int, hosts: String, _ scenario: String, secret: String = secret, options: [String] = []) async throws -> Outcome {
        try await run(
            "fleet", ["launch", "-n", "\(ranks)", "--hosts", hosts] + options + ["--", try product("MPITestPeer").path, scenario],
            environment: ["FLEET_SECRET": secret], seconds: 120)
    }

    /// The ranks' `pid`/`parent` lines: rank → (pid, parent).
    func processes(_ outcome: Outcome) -> [Int: (pid: Int32, parent: Int32)] {
        var found: [Int: (Int32, Int32)] = [:]
        for line in outcome.stdout.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let at = words.firstIndex(of: "rank"), words.count >= at + 8, words[at + 4] == "pid",
                  let rank = Int(words[at + 1]), let pid = Int32(words[at + 5]), let parent = Int32(words[at + 7])
            else { continue }
            found[rank] = (pid, parent)
        }
        return found
    }

    @Test func ranksRunWhereTheHostsSayAndTalkAcrossThem() async throws {
        try await withNodes(2) { nodes in
            let hosts = "local:1,\(nodes[0].endpoint):2,\(nodes[1].endpoint.host):\(nodes[1].endpoint.port):1"
            let outcome = try await launch(4, hosts: hosts, "where", options: ["--prefix"])
            #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
            // Rank 0 is the launcher's child; ranks 1 and 2 the first node's, rank 3 the second's.
            let ranks = processes(outcome)
            #expect(ranks.count == 4, "\(outcome.stdout)")
            #expect(ranks[1]?.parent == nodes[0].pid && ranks[2]?.parent == nodes[0].pid, "\(outcome.stdout)")
            #expect(ranks[3]?.parent == nodes[1].pid, "\(outcome.stdout)")
            #expect(ranks[0].map { $0.parent != nodes[0].pid && $0.parent != nodes[1].pid } == true)
            // Their output came back, prefixed, and the allreduce spanned the hosts.
            for rank in 0..<4 {
                #expect(outcome.stdout.contains("[\(rank)] rank \(rank) sum of ranks: 6"), "\(outcome.stdout)")
            }

            // The collectives and point-to-point checks, over every rank on the nodes.
            let checks = try await launch(3, hosts: "\(nodes[0].endpoint):2,\(nodes[1].endpoint):1", "collectives")
            #expect(checks.status == 0, "\(checks.stdout)\n\(checks.stderr)")
            #expect(checks.stdout.contains("checks: 0 failed"), "\(checks.stdout)")
            #expect(!checks.stdout.contains("FAIL"), "\(checks.stdout)")
        }
    }

    @Test func aRankKilledOnANodeFailsTheJob() async throws {
        try await withNodes(1) { nodes in
            let outcome = try await launch(4, hosts: "local:1,\(nodes[0].endpoint):3", "kill", options: ["--grace", "5"])
            #expect(outcome.status == 137, "\(outcome.stdout)\n\(outcome.stderr)")
            #expect(outcome.stderr.contains("fleet launch: rank 1 failed: was killed by signal 9"), "\(outcome.stderr)")
            for rank in [0, 2, 3] {
                #expect(outcome.stdout.contains("rank \(rank) error after"), "\(outcome.stdout)")
            }
        }
    }

    @Test func aNodeKilledMidRunFailsTheJobAndItsRanksEnd() async throws {
        try await withNodes(2) { nodes in
            let hosts = "local:1,\(nodes[0].endpoint):1,\(nodes[1].endpoint):2"
            let launch = try RunningLaunch(["-n", "4", "--hosts", hosts, "--grace", "2"], scenario: "spin", secret: Self.secret)
            // Once every rank runs (the launcher's child, and the nodes'), the second node dies.
            let doomed = try await waitForChildren(of: nodes[1].pid, count: 2)
            let others = try await waitForChildren(of: nodes[0].pid, count: 1) + waitForChildren(of: launch.pid, count: 1)
            nodes[1].signal(SIGKILL)
            let result = try await launch.finish()
            #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stderr.contains("was lost with node \(nodes[1].endpoint)"), "\(result.stderr)")
            // Every rank's process ends, the dead node's two as well (they are told of the failure).
            try await expectEnded(doomed + others)
        }
    }

    /// Starts `fleet launch` with `arguments` running `MPITestPeer spin`, sends it SIGTERM once
    /// its ranks run (`parents`: who starts them — `nil` for the launcher — and how many), and
    /// returns what it printed, how it ended, and the ranks' PIDs.
    func launchAndTerminate(
        _ arguments: [String], ranksOn parents: [(pid: Int32?, count: Int)]
    ) async throws -> (outcome: Outcome, ranks: [Int32]) {
        let launch = try RunningLaunch(arguments, scenario: "spin", secret: Self.secret)
        var ranks: [Int32] = []
        for parent in parents { ranks += try await waitForChildren(of: parent.pid ?? launch.pid, count: parent.count) }
        kill(launch.pid, SIGTERM)
        return (try await launch.finish(), ranks)
    }

    @Test func sigtermToTheLauncherEndsEveryRankHereAndOnTheNodes() async throws {
        // Ranks here only: the launcher passes the signal on, and they die of it (else they would
        // spin on for a minute and end well). Then with ranks on a node, which passes it on too.
        let began = ContinuousClock.now
        let (local, localRanks) = try await launchAndTerminate(["-n", "2"], ranksOn: [(nil, 2)])
        #expect(local.status == 143, "\(local.stdout)\n\(local.stderr)")
        #expect(local.stderr.contains("was killed by signal 15"), "\(local.stderr)")
        #expect(began.duration(to: .now) < .seconds(30))
        try await expectEnded(localRanks)

        try await withNodes(1) { nodes in
            let (outcome, ranks) = try await launchAndTerminate(
                ["-n", "3", "--hosts", "local:1,\(nodes[0].endpoint):2"], ranksOn: [(nil, 1), (nodes[0].pid, 2)])
            #expect(outcome.status == 143, "\(outcome.stdout)\n\(outcome.stderr)")
            #expect(outcome.stderr.contains("was killed by signal 15"), "\(outcome.stderr)")
            try await expectEnded(ranks)
        }
    }

    @Test func aRankThatLeavesAChildHoldingItsOutputEndsWithoutWaitingForIt() async throws {
        try await withNodes(1) { nodes in
            let began = ContinuousClock.now
            let outcome = try await launch(2, hosts: "\(nodes[0].endpoint):2", "orphan")
            #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
            // The launch waited for neither child (30 s sleeps); those in the ranks' process
            // groups were killed with their ranks. Those in groups of their own are left (as
            // mpirun leaves them): the test stops them.
            #expect(began.duration(to: .now) < .seconds(20))
            func pids(_ label: String) -> [Int32] {
                outcome.stdout.split(separator: "\n").compactMap { line -> Int32? in
                    guard line.contains(label) else { return nil }
                    return line.split(separator: " ").last.flatMap { Int32($0) }
                }
            }
            let children = pids("left child"), strays = pids("left stray")
            #expect(children.count == 2 && strays.count == 2, "\(outcome.stdout)")
            for _ in 0..<50 where children.contains(where: { kill($0, 0) == 0 }) {
                try await Task.sleep(for: .milliseconds(100))
            }
            for child in children where kill(child, 0) == 0 {
                Issue.record("child \(child) still runs")
                kill(child, SIGKILL)
            }
            for stray in strays { kill(stray, SIGKILL) }
        }
    }

    @Test func muchOutputFromRanksOnANodeArrivesWholeAndInOrder() async throws {
        try await withNodes(1) { nodes in
            let outcome = try await launch(3, hosts: "local:1,\(nodes[0].endpoint):2", "chatter", options: ["--prefix"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            var next = [0, 0, 0]
            var misplaced = 0
            for line in outcome.stdout.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.count == 5, let rank = Int(words[2]), (0..<3).contains(rank), words[0] == "[\(rank)]",
                      let number = Int(words[4]) else { continue }
                if number == next[rank] { next[rank] += 1 } else { misplaced += 1 }
            }
            #expect(next == [100_000, 100_000, 100_000], "lines per rank: \(next)")
            #expect(misplaced == 0)
        }
    }

    @Test func aWrongSecretOrAMissingNodeIsAClearErrorAndNothingRuns() async throws {
        try await withNodes(1) { nodes in
            let refused = try await launch(2, hosts: "local:1,\(nodes[0].endpoint):1", "where", secret: "not-\(Self.secret)")
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("node \(nodes[0].endpoint) cannot take ranks"), "\(refused.stderr)")
            #expect(!refused.stdout.contains("sum of ranks"), "\(refused.stdout)")

            let few = try await launch(4, hosts: "local:1,\(nodes[0].endpoint):2", "where")
            #expect(few.status != 0)
            #expect(few.stderr.contains("4 ranks but only 3 slots"), "\(few.stderr)")
        }
        let nowhere = try await launch(2, hosts: "local:1,127.0.0.1:\(try unusedLoopbackPort(SOCK_STREAM)):1", "where")
        #expect(nowhere.status != 0)
        #expect(nowhere.stderr.contains("cannot take ranks"), "\(nowhere.stderr)")
    }
}
