import Foundation
import Testing

/// Three `fleet serve` nodes as separate hosts, each in a network namespace this test creates
/// (veth pairs, 10.77.x.0/24), one of them cut off mid-run by taking its link down: no FIN or
/// RST reaches the job server, which must notice by itself and run the node's jobs elsewhere.
/// Needs root and `ip netns`; skipped, with the reason printed, where they are missing.
@Suite("Job server with nodes on separate network namespaces", .serialized)
struct NetworkNamespaceTests {
    static let secret = "netns-secret-\(UInt64.random(in: 0 ... .max))"

    /// Why the test cannot run here, or `nil` when it can.
    static func unavailableReason() -> String? {
        guard getuid() == 0 else { return "needs root to create network namespaces" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else { return "`ip` (iproute2) is not installed" }
        return nil
    }

    static var ip: String {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip"
    }

    /// Runs `ip ARGUMENTS`; throws with its error output when it fails.
    @discardableResult
    static func ip(_ arguments: String) async throws -> Outcome {
        let outcome = try await runExecutable(ip, arguments.split(separator: " ").map(String.init), seconds: 30)
        guard outcome.status == 0 else { throw SetupError(message: "ip \(arguments): \(outcome.stderr)") }
        return outcome
    }

    /// A host of its own: namespace `namespace`, with loopback up and a veth link to this host,
    /// `LINKn` inside at `address` (CIDR) and `LINKh` here, which the caller configures.
    static func addHost(_ namespace: String, link: String, address: String) async throws {
        try await ip("netns add \(namespace)")
        try await ip("link add \(link)h type veth peer name \(link)n")
        try await ip("link set \(link)n netns \(namespace)")
        try await ip("netns exec \(namespace) ip addr add \(address) dev \(link)n")
        try await ip("netns exec \(namespace) ip link set \(link)n up")
        try await ip("netns exec \(namespace) ip link set lo up")
    }

    /// Starts `fleet serve ARGUMENTS` inside `namespace`, with `secret`.
    static func serve(in namespace: String, _ arguments: [String], secret: String) async throws -> ServingProcess {
        try await ServingProcess.start(
            executable: URL(fileURLWithPath: ip), ["netns", "exec", namespace, try product("fleet").path, "serve"] + arguments,
            environment: ["FLEET_SECRET": secret])
    }

    struct SetupError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Runs `body` with `count` `fleet serve` nodes, node `i` alone in namespace
    /// `fleet-TAG-i` at 10.77.`i`.2 (veth to 10.77.`i`.1 here), serving with `arguments` after
    /// `fleet serve` (its address: `host(i)`); `body` gets the nodes and the host side's link
    /// names. Stops every node and deletes every namespace after.
    func withNodesInNamespaces(
        _ count: Int, serving arguments: @escaping (Int) -> [String],
        _ body: ([ServingProcess], _ links: [String]) async throws -> Void
    ) async throws {
        let tag = String(UInt32.random(in: 0 ... 0xFFFF), radix: 16)
        var namespaces: [String] = []
        var nodes: [ServingProcess] = []
        var caches: [URL] = []
        defer {
            for cache in caches { try? FileManager.default.removeItem(at: cache) }
        }
        do {
            for i in 1...count {
                let namespace = "fleet-\(tag)-\(i)"
                namespaces.append(namespace)
                try await Self.addHost(namespace, link: "fv\(tag)\(i)", address: "10.77.\(i).2/24")
                try await Self.ip("addr add 10.77.\(i).1/24 dev fv\(tag)\(i)h")
                try await Self.ip("link set fv\(tag)\(i)h up")
                // As on a LAN: the rest of the world is behind this host (broadcasts to
                // 255.255.255.255 need a route to leave by).
                try await Self.ip("netns exec \(namespace) ip route add default via 10.77.\(i).1")
                let cache = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-netns-cache-\(UUID())")
                caches.append(cache)
                nodes.append(try await Self.serve(
                    in: namespace, ["--port", "60000", "--workers", "1", "--cache-dir", cache.path] + arguments(i),
                    secret: Self.secret))
            }
            try await body(nodes, (1...count).map { "fv\(tag)\($0)h" })
        } catch {
            Issue.record("\(error)")
        }
        for node in nodes { await node.stop() }
        for namespace in namespaces { _ = try? await Self.ip("netns del \(namespace)") }
    }

    @Test func aNodeCutOffMidRunLosesNoJob() async throws {
        if let reason = Self.unavailableReason() {
            print("skipped: \(reason)")
            return
        }
        try await withNodesInNamespaces(3, serving: { ["--host", "10.77.\($0).2"] }) { _, links in
            let addresses = (1...3).map { "10.77.\($0).2:60000" }
            async let outcome = run("JobTestPeer", ["longnodes"] + addresses, environment: ["FLEET_SECRET": Self.secret], seconds: 180)
            try await Task.sleep(for: .milliseconds(1_500))
            // Cut node 1 off: its link goes down, nothing tells the job server.
            try await Self.ip("link set \(links[0]) down")
            let result = try await outcome
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("naps: 90 done, total 4500 ms"), "\(result.stdout)")
            print(result.stdout)
        }
    }

    /// pp's autodiscovery across hosts: nodes on every interface broadcast their announcements
    /// (255.255.255.255) on their own networks; the job server hears them on its side of each
    /// link and connects to the addresses they came from.
    @Test func nodesBroadcastingOnTheirNetworksAreFound() async throws {
        if let reason = Self.unavailableReason() {
            print("skipped: \(reason)")
            return
        }
        let port = Int.random(in: 40_000 ... 49_999)
        let announce = ["--host", "0.0.0.0", "--announce", "--announce-address", "255.255.255.255:\(port)", "--announce-interval", "0.2"]
        try await withNodesInNamespaces(2, serving: { _ in announce }) { _, _ in
            let outcome = try await run("JobTestPeer", ["discover", "\(port)"], environment: ["FLEET_SECRET": Self.secret], seconds: 120)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("naps: 40 done, total 840 ms"), "\(outcome.stdout)")
            #expect(outcome.stdout.contains("| 10.77.1.2:60000"), "\(outcome.stdout)")
            #expect(outcome.stdout.contains("| 10.77.2.2:60000"), "\(outcome.stdout)")
        }
    }
}
