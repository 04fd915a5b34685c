import CEchoBench
import FleetCooperative
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// `fleet bench echo`: requests per second and round-trip latency (p50, p99) of echo servers on
/// one thread, under the same native load generator (C, epoll, a thread of its own): 50
/// connections, each with one 64-byte message in flight.
///
/// Servers, in alternating rounds: the C epoll echo server (`c`), FleetCooperative's
/// (`fleet`: the seed's listener and client_handler on one ``CooperativeLoop``), plain SwiftNIO
/// on one event loop (`nio`), and optionally an outside one on a loopback port (`--peer`, e.g.
/// Python's asyncio server started by Benchmarks/Peers/run). Also the cost of a scheduler switch:
/// a task's `yield` and resumption on the loop, and the same on an actor whose executor is a NIO
/// event loop.
///
/// Figures: `echo_<server>_rps` (req/s), `echo_<server>_p50`, `echo_<server>_p99` (us, medians
/// over rounds), `echo_fleet_vs_c`, `echo_fleet_vs_nio` (medians of the per-round ratios of
/// req/s), `switch_yield` and `switch_yield_nio_executor` (ns).
public enum EchoBench {
    /// An echo server under test.
    struct Server {
        var name: String
        var port: Int
    }

    /// Runs the benchmark, handing each figure to `report` as soon as it is measured.
    ///
    /// - Parameters:
    ///   - quick: One short round.
    ///   - peer: A further server to measure, by name and loopback port.
    public static func run(quick: Bool, peer: (name: String, port: Int)? = nil, report: (BenchFigure) -> Void) async throws {
        let rounds = quick ? 1 : 15
        let warmup = quick ? 100 : 150
        let duration = quick ? 300 : 600

        var handle: Int32 = -1
        let cPort = fleet_echo_server_start(&handle)
        guard cPort > 0 else { throw BenchError.setup("C echo server: errno \(-cPort)") }
        defer { fleet_echo_server_stop(handle) }

        let fleetLoop = CooperativeLoop()
        let fleetPort = Mutex(0)
        let fleetServer = await fleetLoop.add { loop in
            let sock = try loop.listen(port: 0)
            fleetPort.withLock { $0 = sock.localPort }
            try await MultitaskEcho.listener(sock, loop: loop)
        }
        async let fleetRun: Void = fleetLoop.run()
        while fleetPort.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(1)) }

        let nioGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let nioPort = try await NIOEcho.startServer(group: nioGroup)

        var servers = [Server(name: "c", port: Int(cPort)), Server(name: "fleet", port: fleetPort.withLock { $0 }),
                       Server(name: "nio", port: nioPort)]
        if let peer { servers.append(Server(name: peer.name, port: peer.port)) }

        var results: [String: [fleet_echo_load_result]] = [:]
        var failure: (any Error)?
        do {
            for _ in 0..<rounds {
                for server in servers {
                    let result = await load(port: server.port, warmup: warmup, duration: duration)
                    guard result.error == 0 else {
                        throw BenchError.setup("load on \(server.name) (port \(server.port)) failed: errno \(result.error)")
                    }
                    results[server.name, default: []].append(result)
                }
            }
        } catch {
            failure = error
        }
        fleetServer.cancel()
        try? await fleetRun
        try? await nioGroup.shutdownGracefully()
        if let failure { throw failure }

        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        }
        func rps(_ result: fleet_echo_load_result) -> Double { Double(result.requests) / result.seconds }
        for server in servers {
            let runs = results[server.name] ?? []
            report(BenchFigure("echo_\(server.name)_rps", median(runs.map(rps)), "req/s"))
            report(BenchFigure("echo_\(server.name)_p50", median(runs.map(\.p50_us)), "us"))
            report(BenchFigure("echo_\(server.name)_p99", median(runs.map(\.p99_us)), "us"))
        }
        func ratio(_ a: String, _ b: String) -> Double {
            median(zip(results[a] ?? [], results[b] ?? []).map { rps($0) / rps($1) })
        }
        report(BenchFigure("echo_fleet_vs_c", ratio("fleet", "c"), "x"))
        report(BenchFigure("echo_fleet_vs_nio", ratio("fleet", "nio"), "x"))
        if let peer { report(BenchFigure("echo_fleet_vs_\(peer.name)", ratio("fleet", peer.name), "x")) }

        let switches = quick ? 200_000 : 2_000_000
        report(BenchFigure("switch_yield", try await yieldCost(switches: switches), "ns"))
        report(BenchFigure("switch_yield_nio_executor", await nioYieldCost(switches: switches), "ns"))
    }

    /// Runs the load generator on a thread of its own.
    static func load(port: Int, warmup: Int, duration: Int) async -> fleet_echo_load_result {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: fleet_echo_load(Int32(port), 50, 64, Int32(warmup), Int32(duration)))
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Nanoseconds per switch: two tasks on one loop yield to each other `switches` times in all
    /// (median of three runs).
    static func yieldCost(switches: Int) async throws -> Double {
        var samples: [Double] = []
        for _ in 0..<3 {
            samples.append(try await CooperativeLoop.run { loop in
                let start = ContinuousClock.now
                let a = loop.add { for _ in 0..<switches / 2 { await loop.yield() } }
                let b = loop.add { for _ in 0..<switches / 2 { await loop.yield() } }
                try await a.value
                try await b.value
                return (ContinuousClock.now - start).inSeconds / Double(switches) * 1e9
            })
        }
        return samples.sorted()[1]
    }

    /// The same switch on an actor whose executor is a NIO event loop (`EventLoop.executor`).
    static func nioYieldCost(switches: Int) async -> Double {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let bound = NIOBound(loop: group.next())
        let start = ContinuousClock.now
        async let a: Void = bound.spin(switches / 2)
        async let b: Void = bound.spin(switches / 2)
        _ = await (a, b)
        return (ContinuousClock.now - start).inSeconds / Double(switches) * 1e9
    }

    /// An actor on a NIO event loop.
    actor NIOBound {
        let loop: any EventLoop
        nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

        init(loop: any EventLoop) { self.loop = loop }

        func spin(_ count: Int) async {
            for _ in 0..<count { await Task.yield() }
        }
    }
}
