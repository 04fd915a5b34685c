// `fleet serve`: run a worker node for remote jobs (FleetJobs).

import ArgumentParser
import Fleet
import Foundation
import Logging
import ServiceLifecycle

/// `fleet serve`: a worker node that runs jobs for authenticated clients (Parallel Python's `ppserver.py`).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a worker node that executes jobs for authenticated clients.",
        discussion: """
            Listens on HOST:PORT and runs jobs sent by job servers elsewhere, the way Parallel \
            Python's ppserver.py does. A job server ships its own executable (cached here by \
            SHA-256 in --cache-dir, sent only when missing) and its jobs run on --workers processes \
            of that executable. Prints "listening on HOST:PORT" once it serves; SIGINT or SIGTERM \
            shut it down in order.

            Secure by default: the node never runs code for a peer that has not proven it knows the \
            shared secret (HMAC-SHA256 challenge/response). There is no built-in secret: give one \
            with --secret-file PATH or the FLEET_SECRET environment variable, never on the command \
            line. Without one the node refuses to start, unless --insecure is given and --host is a \
            loopback address. Traffic is encrypted with TLS when --tls-cert and --tls-key are given.

            With --announce the node tells job servers that it is there (Parallel Python's \
            autodiscovery): every --announce-interval seconds it sends a UDP datagram with its \
            port, sealed with the secret, to --announce-address. Job servers created with \
            discovery (sum-primes --discover) and the same secret link it as they hear it.

            """
    )

    @Option(help: "The address to listen on; 0.0.0.0 accepts clients from other machines.")
    var host: String = "127.0.0.1"

    @Option(help: "The TCP port to listen on.")
    var port: Int = 60000

    @Option(help: "Worker processes per client program. Default: active cores.")
    var workers: Int?

    @Option(help: "Where shipped executables are cached. Default: ~/.cache/fleet/executables.", completion: .directory)
    var cacheDir: String?

    @Option(help: "A file holding the shared secret clients must prove they know (or set FLEET_SECRET).", completion: .file())
    var secretFile: String?

    @Flag(help: "Run without a secret: accepted only when --host is loopback (127.0.0.1, ::1, localhost).")
    var insecure = false

    @Option(help: "PEM certificate chain for TLS (with --tls-key).", completion: .file())
    var tlsCert: String?

    @Option(help: "PEM private key for TLS (with --tls-cert).", completion: .file())
    var tlsKey: String?

    @Flag(help: "Announce this node over UDP so that job servers created with discovery find it (pp's -a).")
    var announce = false

    @Option(help: "Where --announce sends: a broadcast address or a job server's IP address, with the UDP port it listens on (pp's -b).")
    var announceAddress: String = "255.255.255.255:\(NodeDiscovery.defaultPort)"

    @Option(help: "Seconds between announcements.")
    var announceInterval: Double = 2

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1.") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together.") }
        guard announceInterval > 0, announceInterval <= 3600 else {
            throw ValidationError("--announce-interval must be between 0 and 3600 seconds.")
        }
        do {
            _ = try Endpoint(announceAddress)
        } catch {
            throw ValidationError("--announce-address: \(error)")
        }
    }

    func run() async throws {
        var configuration = FleetActorSystem.Configuration(
            credentials: try Credentials.resolve(secretFile: secretFile, insecure: insecure))
        if let tlsCert, let tlsKey {
            configuration.wire.tls = TLSOptions(certificateChainFile: tlsCert, privateKeyFile: tlsKey)
        }
        let discovery = announce
            ? NodeDiscovery(address: try Endpoint(announceAddress), interval: .milliseconds(Int(announceInterval * 1000)))
            : nil
        let node = try await JobNodeServer.start(
            on: Endpoint(host: host, port: port), workers: workers, configuration: configuration,
            cacheDirectory: cacheDir.map { URL(fileURLWithPath: $0) }, announcing: discovery)
        print("listening on \(node.endpoint)")
        if let discovery { print("announcing to \(discovery.address) every \(announceInterval) s") }
        print("\(node.workers) worker processes per client program; executables cached in \(cacheDir ?? "~/.cache/fleet/executables")")
        fflush(nil)
        // SIGTERM or SIGINT: a graceful shutdown (swift-service-lifecycle).
        let group = ServiceGroup(
            services: [node], gracefulShutdownSignals: [.sigterm, .sigint], logger: configuration.wire.logger)
        try await group.run()
    }
}
