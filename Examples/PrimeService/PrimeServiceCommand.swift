// prime-service: the seed's RPyC example — a server computes primes for remote clients.

import ArgumentParser
import FleetActors
import FleetExamples
import FleetWire
import Foundation

/// `prime-service serve | call`: the seed's RPyC example on FleetActors.
@main
struct PrimeServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prime-service",
        abstract: "The seed's RPyC example: a server hosts a Primes actor, clients call it remotely.",
        discussion: """
            The shared secret comes from --secret-file PATH or the FLEET_SECRET environment \
            variable, never from the command line; both sides need the same one.
            """,
        subcommands: [Serve.self, Call.self]
    )

    /// Options both subcommands share.
    struct SecurityOptions: ParsableArguments {
        @Option(help: "A file holding the shared secret (or set FLEET_SECRET).", completion: .file())
        var secretFile: String?

        @Flag(help: "No secret: accepted only on loopback addresses.")
        var insecure = false

        func configuration() throws -> FleetActorSystem.Configuration {
            FleetActorSystem.Configuration(credentials: try Credentials.resolve(secretFile: secretFile, insecure: insecure))
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Host a Primes actor until SIGINT or SIGTERM.",
            discussion: "Prints \"listening on HOST:PORT\" once it accepts calls (the real port when --port is 0).")

        @Option(help: "The address to listen on; 0.0.0.0 accepts clients from other machines.")
        var host = "127.0.0.1"

        @Option(help: "The TCP port to listen on (0: any free port).")
        var port = 18861

        @OptionGroup var security: SecurityOptions

        func run() async throws {
            try await PrimeService.serve(
                on: Endpoint(host: host, port: port),
                configuration: try security.configuration(),
                ready: { endpoint in
                    print("listening on \(endpoint)")
                    fflush(nil)
                },
                until: { await waitForTerminationSignal() }
            )
        }
    }

    struct Call: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask one or more servers for the first N primes and print the last 20 of each.")

        @Option(name: .customLong("to"), help: "A server's HOST:PORT (repeat for several servers).")
        var servers: [String] = ["127.0.0.1:18861"]

        @Flag(name: .customLong("async"), help: "Call every server at once instead of one after another.")
        var concurrently = false

        @OptionGroup var security: SecurityOptions

        @Argument(help: "How many primes to compute.")
        var count = 500

        func validate() throws {
            guard count >= 0 else { throw ValidationError("N must not be negative.") }
            guard !servers.isEmpty else { throw ValidationError("Give at least one --to HOST:PORT.") }
        }

        func run() async throws {
            let endpoints = try servers.map { try Endpoint($0) }
            let system = FleetActorSystem(configuration: try security.configuration())
            do {
                let start = ContinuousClock.now
                let answers = try await PrimeService.call(endpoints, n: count, concurrently: concurrently, system: system)
                for answer in answers {
                    print(PrimeService.lastTwenty(answer.primes))
                    if answers.count > 1 || concurrently {
                        print("  from \(answer.server) in \(PrimeService.milliseconds(answer.elapsed))")
                    }
                }
                if answers.count > 1 {
                    print("\(answers.count) servers \(concurrently ? "at once" : "one after another") in \(PrimeService.milliseconds(start.duration(to: .now)))")
                }
                await system.shutdown()
            } catch {
                await system.shutdown()
                FileHandle.standardError.write(Data("prime-service: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
