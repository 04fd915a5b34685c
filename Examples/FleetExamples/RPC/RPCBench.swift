import FleetActors
import FleetWire
import Foundation
import NIOPosix

/// `fleet bench rpc`: FleetActors' call path between two processes on loopback.
///
/// The parent starts a copy of itself as the server (`serverArguments`), which hosts a
/// ``Primes`` actor and a raw TCP echo server, and measures against it:
///
/// - `tcp_rtt_median` (µs): a raw TCP round trip of 64 bytes, blocking sockets on both sides —
///   the floor any remote call on this machine stands on;
/// - `rpc_echo_rtt_median`, `rpc_echo_rtt_p99` (µs): a trivial call (`echo(Int) -> Int`), one at
///   a time from Swift's global executor, over 20,000 calls; `rpc_echo_rtt_ratio_to_tcp` (x): the
///   median, over 10 rounds that alternate with raw TCP, of the call's median over the raw one;
/// - `rpc_sync_calls` (calls/s): the same calls per second;
/// - the same four with `_on_loop`: calls made inside
///   ``FleetActorSystem/withCallsOnConnection(to:_:)``;
/// - `rpc_echo_rtt_median_without_busy_poll` and its ratio: the calls from the global executor
///   again, to a second actor system in the server whose connections, like the client's, never
///   busy-poll (``WireConfiguration/busyPoll`` set to zero): what the busy poll saves;
/// - `rpc_pipelined_calls` (calls/s): 1,000 calls outstanding at all times (and `_on_loop`);
/// - `rpc_primes_500` (calls/s): `getNPrimes(500)`, one at a time;
/// - `rpc_doubles_1m_arg` (MB/s, 10^6 bytes): `sum([Double])` with 1 MiB arguments.
public enum RPCBench {
    /// The arguments that make the executable act as the benchmark's server (the parent adds
    /// them after its own executable path).
    public static let serverArguments = ["bench", "rpc", "--serve"]

    /// Runs the benchmark against a server process started from `executable`.
    public static func run(executable: String, quick: Bool = false, report: (BenchFigure) -> Void) async throws {
        let secret = (0..<32).map { _ in String(UInt8.random(in: .min ... .max), radix: 16) }.joined()
        // Starting and stopping the server block on its pipes: on a thread of their own.
        let server = try await runOnDedicatedThread(name: "bench-server") {
            Result { try ServerProcess(executable: executable, arguments: serverArguments, secret: secret) }
        }.get()
        let configuration = FleetActorSystem.Configuration(credentials: .secret(try Secret(Array(secret.utf8))))
        let system = FleetActorSystem(configuration: configuration)
        let unpolledLoops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let unpolled = FleetActorSystem(configuration: withoutBusyPoll(configuration, on: unpolledLoops))
        do {
            try await measure(system: system, unpolled: unpolled, server: server, quick: quick, report: report)
        } catch {
            await stop(system, unpolled, unpolledLoops, server)
            throw error
        }
        await stop(system, unpolled, unpolledLoops, server)
    }

    /// `configuration` with busy polling off, on loops of its own.
    private static func withoutBusyPoll(
        _ configuration: FleetActorSystem.Configuration, on loops: MultiThreadedEventLoopGroup
    ) -> FleetActorSystem.Configuration {
        var configuration = configuration
        configuration.wire.busyPoll = .zero
        configuration.eventLoopGroup = loops
        return configuration
    }

    private static func stop(
        _ system: FleetActorSystem, _ unpolled: FleetActorSystem, _ loops: MultiThreadedEventLoopGroup, _ server: ServerProcess
    ) async {
        await system.shutdown()
        await unpolled.shutdown()
        try? await loops.shutdownGracefully()
        await runOnDedicatedThread(name: "bench-server") { server.stop() }
    }

    private static func measure(
        system: FleetActorSystem, unpolled: FleetActorSystem, server: ServerProcess, quick: Bool, report: (BenchFigure) -> Void
    ) async throws {
        // Latency: rounds that alternate the raw TCP round trip and the two ways of calling, so
        // that each ratio compares figures taken under the same conditions on a noisy machine.
        let rounds = quick ? 2 : 10
        let perRound = quick ? 1_000 : 2_000
        let tcpClient = try RawTCP.Client(port: server.tcpPort, size: 64)
        let endpoint = Endpoint(host: "127.0.0.1", port: server.rpcPort)
        let primes = try await system.resolve(Primes.self, named: Primes.publishedName, at: endpoint)
        let unpolledPrimes = try await unpolled.resolve(
            Primes.self, named: Primes.publishedName, at: Endpoint(host: "127.0.0.1", port: server.unpolledPort))
        _ = try await runOnDedicatedThread(name: "tcp-ping") { Result { try tcpClient.roundTrips(count: 500) } }.get()
        for i in 0..<(quick ? 200 : 2_000) {   // Warm-up.
            _ = try await primes.echo(i)
            _ = try await unpolledPrimes.echo(i)
        }

        var tcp: [Double] = [], nio: [Double] = [], pool: [Double] = [], onLoop: [Double] = [], withoutPoll: [Double] = []
        var poolRatios: [Double] = [], onLoopRatios: [Double] = [], withoutPollRatios: [Double] = []
        var poolSeconds = 0.0, onLoopSeconds = 0.0
        for _ in 0..<rounds {
            let tcpRound = try await runOnDedicatedThread(name: "tcp-ping") {
                Result { try tcpClient.roundTrips(count: perRound) }
            }.get()
            nio += try await NIOEcho.roundTrips(port: server.nioPort, count: perRound, size: 64)
            let poolRound = try await sequentialLatencies(primes, count: perRound)
            let loopRound = try await system.withCallsOnConnection(to: primes) {
                try await sequentialLatencies(primes, count: perRound)
            }
            let unpolledRound = try await sequentialLatencies(unpolledPrimes, count: perRound)
            let tcpMedian = Latencies(tcpRound).median
            poolRatios.append(Latencies(poolRound.samples).median / tcpMedian)
            onLoopRatios.append(Latencies(loopRound.samples).median / tcpMedian)
            withoutPollRatios.append(Latencies(unpolledRound.samples).median / tcpMedian)
            withoutPoll += unpolledRound.samples
            tcp += tcpRound
            pool += poolRound.samples
            onLoop += loopRound.samples
            poolSeconds += poolRound.total
            onLoopSeconds += loopRound.total
        }
        let calls = Double(rounds * perRound)
        report(BenchFigure("tcp_rtt_median", Latencies(tcp).median * 1e6, "us"))
        report(BenchFigure("nio_rtt_median", Latencies(nio).median * 1e6, "us"))
        report(BenchFigure("rpc_echo_rtt_median", Latencies(pool).median * 1e6, "us"))
        report(BenchFigure("rpc_echo_rtt_p99", Latencies(pool).p99 * 1e6, "us"))
        report(BenchFigure("rpc_echo_rtt_ratio_to_tcp", Latencies(poolRatios).median, "x"))
        report(BenchFigure("rpc_sync_calls", calls / poolSeconds, "calls/s"))
        report(BenchFigure("rpc_echo_rtt_median_on_loop", Latencies(onLoop).median * 1e6, "us"))
        report(BenchFigure("rpc_echo_rtt_p99_on_loop", Latencies(onLoop).p99 * 1e6, "us"))
        report(BenchFigure("rpc_echo_rtt_on_loop_ratio_to_tcp", Latencies(onLoopRatios).median, "x"))
        report(BenchFigure("rpc_sync_calls_on_loop", calls / onLoopSeconds, "calls/s"))
        report(BenchFigure("rpc_echo_rtt_median_without_busy_poll", Latencies(withoutPoll).median * 1e6, "us"))
        report(BenchFigure("rpc_echo_rtt_without_busy_poll_ratio_to_tcp", Latencies(withoutPollRatios).median, "x"))

        report(BenchFigure("rpc_pipelined_calls", try await pipelined(primes, calls: quick ? 20_000 : 200_000, window: 1_000), "calls/s"))
        report(BenchFigure("rpc_pipelined_calls_on_loop", try await system.withCallsOnConnection(to: primes) {
            try await pipelined(primes, calls: quick ? 20_000 : 200_000, window: 1_000)
        }, "calls/s"))

        let expected = Primes.firstPrimes(500)
        report(BenchFigure("rpc_primes_500", try await callsPerSecond(seconds: quick ? 0.2 : 2) {
            guard try await primes.getNPrimes(500) == expected else { throw BenchError.roundTripMismatch("getNPrimes") }
        }, "calls/s"))

        let doubles = (0..<(1 << 17)).map { Double($0) * 0.5 + 0.25 }
        let sum = doubles.reduce(0, +)
        let callsPerSecond = try await callsPerSecond(seconds: quick ? 0.2 : 2) {
            guard try await primes.sum(doubles) == sum else { throw BenchError.roundTripMismatch("sum") }
        }
        report(BenchFigure("rpc_doubles_1m_arg", callsPerSecond * Double(doubles.count * 8) / 1e6, "MB/s"))
    }

    /// The seconds of each of `count` trivial calls made one after another, and their total.
    static func sequentialLatencies(_ primes: Primes, count: Int) async throws -> (samples: [Double], total: Double) {
        let clock = ContinuousClock()
        var samples: [Double] = []
        samples.reserveCapacity(count)
        let start = clock.now
        var last = start
        for i in 0..<count {
            guard try await primes.echo(i) == i else { throw BenchError.roundTripMismatch("echo") }
            let now = clock.now
            samples.append((now - last).inSeconds)
            last = now
        }
        return (samples, (clock.now - start).inSeconds)
    }

    /// Calls per second with `window` calls outstanding at all times, over `calls` calls.
    static func pipelined(_ primes: Primes, calls: Int, window: Int) async throws -> Double {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var started = 0
            func startOne() {
                let i = started
                started += 1
                group.addTask {
                    guard try await primes.echo(i) == i else { throw BenchError.roundTripMismatch("echo") }
                }
            }
            while started < min(window, calls) { startOne() }
            while try await group.next() != nil {
                if started < calls { startOne() }
            }
        }
        return Double(calls) / start.duration(to: .now).inSeconds
    }

    /// Runs `body` one call after another for about `seconds`; returns calls per second.
    static func callsPerSecond(seconds: Double, _ body: () async throws -> Void) async throws -> Double {
        try await body()   // Warm-up.
        let start = ContinuousClock.now
        var calls = 0
        while start.duration(to: .now).inSeconds < seconds || calls < 3 {
            try await body()
            calls += 1
        }
        return Double(calls) / start.duration(to: .now).inSeconds
    }

    /// The server side: hosts ``Primes`` and a raw TCP echo server on loopback, prints
    /// `ready RPC_PORT TCP_PORT`, and serves until its standard input closes (the parent ended).
    public static func serve() async throws {
        let credentials = try Credentials.resolve(secretFile: nil, insecure: false)
        let tcpPort = try RawTCP.startEchoServer(size: 64)
        let nioPort = try await NIOEcho.startServer()
        let configuration = FleetActorSystem.Configuration(credentials: credentials)
        let system = FleetActorSystem(configuration: configuration)
        let endpoint = try await system.listen(on: Endpoint(host: "127.0.0.1", port: 0))
        system.publish(Primes(actorSystem: system), as: Primes.publishedName)
        let unpolledLoops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let unpolled = FleetActorSystem(configuration: withoutBusyPoll(configuration, on: unpolledLoops))
        let unpolledEndpoint = try await unpolled.listen(on: Endpoint(host: "127.0.0.1", port: 0))
        unpolled.publish(Primes(actorSystem: unpolled), as: Primes.publishedName)
        print("ready \(endpoint.port) \(tcpPort) \(nioPort) \(unpolledEndpoint.port)")
        fflush(nil)
        await runOnDedicatedThread(name: "stdin-watch") {
            while let _ = readLine() {}
        }
        await system.shutdown()
        await unpolled.shutdown()
        try? await unpolledLoops.shutdownGracefully()
    }
}

/// Median and 99th percentile of samples.
struct Latencies {
    let median: Double
    let p99: Double

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        median = sorted[sorted.count / 2]
        p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    }
}
