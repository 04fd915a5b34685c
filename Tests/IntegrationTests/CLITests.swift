import Foundation
import Testing

/// Runs the built `fleet` executable as a user would and checks what it prints and returns.
@Suite("fleet CLI", .serialized)
struct CLITests {
    /// Runs `fleet` with `arguments`, killing it (by PID) if it runs past `seconds`.
    func fleet(_ arguments: [String], seconds: Double = 60) async throws -> Outcome {
        try await run("fleet", arguments, seconds: seconds)
    }

    @Test func helpListsEverySubcommand() async throws {
        let outcome = try await fleet(["--help"])
        #expect(outcome.status == 0)
        for name in ["demo", "serve", "launch", "status", "bench"] {
            #expect(outcome.stdout.contains(name), "help lacks \(name)")
        }
        for name in ["demo", "serve", "launch", "status", "bench"] {
            let sub = try await fleet([name, "--help"])
            #expect(sub.status == 0, "\(name) --help failed: \(sub.stderr)")
            #expect(sub.stdout.contains("USAGE"))
        }
    }

    @Test(arguments: [
        (["launch", "-n", "2", "--hosts", "node-a,node-b", "--", "true"], "no secret"),
        (["launch", "-n", "2", "--hosts", "node-a:60000", "--", "true"], "for a node's port write HOST:PORT:SLOTS"),
        (["launch", "-n", "2", "--hosts", "local,node-a", "--transport", "shm", "--", "true"], "ranks on nodes talk over tcp"),
    ])
    func launchOnHostsRefusesBadInputInOneLine(arguments: [String], reason: String) async throws {
        // Whatever FLEET_SECRET the tests run with, the launcher gets none.
        let outcome = try await runExecutable(
            "/usr/bin/env", ["-u", "FLEET_SECRET", try product("fleet").path] + arguments)
        #expect(outcome.status != 0, "\(arguments) claimed success")
        #expect(outcome.stderr.contains(reason), "\(arguments): \(outcome.stderr)")
    }

    @Test func demoThreadsRuns() async throws {
        let outcome = try await fleet(["demo", "threads", "--count", "3", "--sleep-scale", "0.001"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("thread - 1"))
        #expect(outcome.stdout.contains("thread - 2"))
    }

    @Test func demoRPCRunsTheSeedsExample() async throws {
        let outcome = try await fleet(["demo", "rpc"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("[3433, 3449, 3457, 3461, 3463, 3467, 3469, 3491, 3499, 3511, 3517, 3527, 3529, 3533, 3539, 3541, 3547, 3557, 3559, 3571]"))
        #expect(outcome.stdout.contains("all equal: true"))
        #expect(outcome.stdout.contains("wrong secret: rejected"))
    }

    @Test func demoCooperativeRunsTheSeedsMultitaskExamples() async throws {
        let outcome = try await fleet(["demo", "cooperative"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("  hello\n  goodbye\n  hello\n  goodbye\n  hello\n  goodbye\n"))
        #expect(outcome.stdout.contains("sent \"multitask\", received \"multitask\""))
        #expect(outcome.stdout.contains("inline     : 0 echoes answered during the computation"))
        #expect(!outcome.stdout.contains("offload { }: 0 echoes"))
    }

    @Test func benchEchoPrintsEveryFigure() async throws {
        let outcome = try await fleet(["bench", "echo", "--quick"], seconds: 300)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let metrics = Set(outcome.stdout.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) })
        for server in ["c", "fleet", "nio"] {
            for figure in ["rps", "p50", "p99"] {
                #expect(metrics.contains("echo_\(server)_\(figure)"), "missing echo_\(server)_\(figure) in \(outcome.stdout)")
            }
        }
        for metric in ["echo_fleet_vs_c", "echo_fleet_vs_nio", "switch_yield", "switch_yield_nio_executor"] {
            #expect(metrics.contains(metric), "missing \(metric) in \(outcome.stdout)")
        }
    }

    @Test func benchEchoRejectsABadPeer() async throws {
        let outcome = try await fleet(["bench", "echo", "--peer", "asyncio"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("NAME:PORT"))
    }

    @Test(arguments: ["tcp", "shm"])
    func benchMPIPrintsEveryFigure(transport: String) async throws {
        let outcome = try await fleet(["bench", "mpi", "--quick", "--transport", transport], seconds: 300)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("# transport: \(transport)"), "\(outcome.stdout)")
        let metrics = Set(outcome.stdout.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) })
        for metric in ["raw_tcp_one_way", "pingpong_8B_one_way", "allreduce_1_double", "barrier",
                       "allreduce_1M_doubles", "allreduce_1M_doubles_throughput", "allreduce_1M_doubles_in_place",
                       "allreduce_1M_doubles_into", "pingpong_vs_raw_tcp"] {
            #expect(metrics.contains(metric), "missing \(metric) in \(outcome.stdout)")
        }
    }

    @Test func benchRPCPrintsEveryFigure() async throws {
        let outcome = try await fleet(["bench", "rpc", "--quick"], seconds: 300)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let metrics = Set(outcome.stdout.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) })
        for metric in ["tcp_rtt_median", "rpc_echo_rtt_median", "rpc_echo_rtt_p99", "rpc_sync_calls",
                       "rpc_pipelined_calls", "rpc_primes_500", "rpc_doubles_1m_arg"] {
            #expect(metrics.contains(metric), "missing \(metric) in \(outcome.stdout)")
        }
    }

    @Test func demoJobsRunsTheSeedsProgram() async throws {
        let outcome = try await fleet(["demo", "jobs"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("Sum of primes below 100000 is 454396537"))
        #expect(outcome.stdout.contains("Sum of primes below 100700 is 460217613"))
        #expect(outcome.stdout.contains("Job execution statistics:"))
        #expect(outcome.stdout.contains("worker processes"))
        #expect(outcome.stdout.contains("node stopped"))
    }

    @Test func sumPrimesTakesInputsAndWorkers() async throws {
        let outcome = try await run("sum-primes", ["--workers", "3", "10", "100"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("Starting Fleet with 3 local workers"))
        #expect(outcome.stdout.contains("Sum of primes below 10 is 17"))
        #expect(outcome.stdout.contains("Sum of primes below 100 is 1060"))
        let noWorkers = try await run("sum-primes", ["--workers", "0"])
        #expect(noWorkers.status != 0)
        #expect(noWorkers.stderr.contains("--workers"))
    }

    @Test func benchJobsPrintsEveryFigure() async throws {
        let outcome = try await fleet(["bench", "jobs", "--quick"], seconds: 300)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        for metric in ["jobs_trivial_threads", "jobs_trivial_processes", "jobs_trivial_node", "sum_primes_1_worker", "sum_primes_2_workers", "sum_primes_speedup_2_workers"] {
            #expect(outcome.stdout.contains(metric + "\t"), "missing \(metric)")
        }
    }

    @Test func serveRefusesToStartWithoutASecret() async throws {
        let outcome = try await run("fleet", ["serve", "--port", "0"], environment: ["FLEET_SECRET": ""], seconds: 30)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.lowercased().contains("secret"), "\(outcome.stderr)")
        let open = try await run("fleet", ["serve", "--host", "0.0.0.0", "--port", "0", "--insecure"], seconds: 30)
        #expect(open.status != 0)
        #expect(open.stderr.contains("loopback"), "\(open.stderr)")
    }

    @Test func statusOfANodeThatIsNotThereIsAClearError() async throws {
        let outcome = try await run("fleet", ["status", "127.0.0.1:1"], environment: ["FLEET_SECRET": "some-secret-value"], seconds: 30)
        #expect(outcome.status != 0)
        #expect(!outcome.stderr.isEmpty)
    }

    @Test func unknownSectionIsAUsageError() async throws {
        let outcome = try await fleet(["demo", "nonsense"])
        #expect(outcome.status != 0)
        #expect(!outcome.stderr.isEmpty)
    }
}
