import Foundation
import Testing

/// `fleet launch --hosts` across hosts: two `fleet serve` nodes, each alone in a network
/// namespace this test creates, on one bridge (10.78.0.0/24) with this host (10.78.0.1), as on a
/// LAN. Needs root and `ip netns`; skipped, with the reason printed, where they are missing.
@Suite("fleet launch with ranks on hosts in network namespaces", .serialized)
struct LaunchAcrossNamespacesTests {
    static let secret = "launch-netns-secret-\(UInt64.random(in: 0 ... .max))"
    typealias Namespaces = NetworkNamespaceTests

    /// Runs `body` with `count` nodes, node `i` in namespace `fleet-TAG-i` at 10.78.0.`i+1`,
    /// serving on port 60000 with 2 workers; `body` gets the nodes and their links' names on
    /// this side. Stops every node and deletes the namespaces and the bridge after.
    func withNodesOnABridge(_ count: Int, _ body: ([ServingProcess], _ links: [String]) async throws -> Void) async throws {
        let tag = String(UInt32.random(in: 0 ... 0xFFFF), radix: 16)
        let bridge = "fb\(tag)"
        var namespaces: [String] = []
        var nodes: [ServingProcess] = []
        var caches: [URL] = []
        do {
            try await Namespaces.ip("link add \(bridge) type bridge")
            try await Namespaces.ip("addr add 10.78.0.1/24 dev \(bridge)")
            try await Namespaces.ip("link set \(bridge) up")
            for i in 1...count {
                let namespace = "fleet-\(tag)-\(i)"
                namespaces.append(namespace)
                try await Namespaces.addHost(namespace, link: "fb\(tag)\(i)", address: "10.78.0.\(i + 1)/24")
                try await Namespaces.ip("link set fb\(tag)\(i)h master \(bridge)")
                try await Namespaces.ip("link set fb\(tag)\(i)h up")
                let cache = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-launch-netns-\(UUID())")
                caches.append(cache)
                nodes.append(try await Namespaces.serve(
                    in: namespace, ["--host", "10.78.0.\(i + 1)", "--port", "60000", "--workers", "2", "--cache-dir", cache.path],
                    secret: Self.secret))
            }
            try await body(nodes, (1...count).map { "fb\(tag)\($0)h" })
        } catch {
            Issue.record("\(error)")
        }
        for node in nodes { await node.stop() }
        for namespace in namespaces { _ = try? await Namespaces.ip("netns del \(namespace)") }
        _ = try? await Namespaces.ip("link del \(bridge)")
        for cache in caches { try? FileManager.default.removeItem(at: cache) }
    }

    func launch(_ ranks: Int, hosts: String, _ scenario: String, options: [String] = []) async throws -> Outcome {
        try await run(
            "fleet", ["launch", "-n", "\(ranks)", "--hosts", hosts] + options + ["--", try product("MPITestPeer").path, scenario],
            environment: ["FLEET_SECRET": Self.secret], seconds: 150)
    }

    @Test func ranksOnThreeHostsComputeTogether() async throws {
        if let reason = Namespaces.unavailableReason() {
            print("skipped: \(reason)")
            return
        }
        try await withNodesOnABridge(2) { _, _ in
            let outcome = try await launch(5, hosts: "local:1,10.78.0.2:2,10.78.0.3:2", "collectives")
            #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
            #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)")
            #expect(!outcome.stdout.contains("FAIL"), "\(outcome.stdout)")
        }
    }

    /// A host cut off mid-run (its link down: no FIN, no RST): the launcher notices by itself,
    /// fails the job naming a rank lost with that node, and ends; the cut-off node, noticing the
    /// launcher gone, kills its ranks.
    @Test func aHostCutOffMidRunFailsTheJobWithoutAHang() async throws {
        if let reason = Namespaces.unavailableReason() {
            print("skipped: \(reason)")
            return
        }
        try await withNodesOnABridge(2) { nodes, links in
            let began = ContinuousClock.now
            let launch = try RunningLaunch(
                ["-n", "5", "--hosts", "local:1,10.78.0.2:2,10.78.0.3:2", "--grace", "2"], scenario: "spin", secret: Self.secret)
            // Once every rank runs, the second node's link goes down: no FIN, no RST.
            var ranks = try await waitForChildren(of: launch.pid, count: 1)
            for node in nodes { ranks += try await waitForChildren(of: node.pid, count: 2) }
            try await Namespaces.ip("link set \(links[1]) down")
            let result = try await launch.finish()
            #expect(result.status != 0, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stderr.contains("was lost with node 10.78.0.3:60000"), "\(result.stderr)")
            #expect(began.duration(to: .now) < .seconds(60), "\(result.stderr)")
            // The node cut off kills its two ranks once it notices the launcher is gone (its
            // heartbeats, 5 s apart, go unanswered): no rank of the job is left running.
            try await expectEnded(ranks, within: 30)
        }
    }
}
