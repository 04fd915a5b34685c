// `fleet serve`: run a worker node for remote jobs and actors (FleetJobs, issue #4).

import ArgumentParser

/// `fleet serve`: a worker node that runs jobs for authenticated clients (Parallel Python's `ppserver.py`).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a worker node that executes jobs for authenticated clients (not available yet).",
        discussion: """
            Listens on HOST:PORT and runs jobs sent by job servers elsewhere, on --workers local \
            threads, the way Parallel Python's ppserver.py does.

            Secure by default: the node never runs code for a peer that has not proven it knows the \
            shared secret (HMAC-SHA256 challenge/response). There is no built-in secret: give one \
            with --secret-file PATH or the FLEET_SECRET environment variable, never on the command \
            line. Without one the node refuses to start, unless --insecure is given and --host is a \
            loopback address. Traffic is encrypted with TLS when --tls-cert and --tls-key are given.

            Not available yet: comes with \(PendingModule.jobs.reference).
            """
    )

    @Option(help: "The address to listen on; 0.0.0.0 accepts clients from other machines.")
    var host: String = "127.0.0.1"

    @Option(help: "The TCP port to listen on.")
    var port: Int = 60000

    @Option(help: "Jobs to run at once. Default: active cores.")
    var workers: Int?

    @Option(help: "A file holding the shared secret clients must prove they know (or set FLEET_SECRET).", completion: .file())
    var secretFile: String?

    @Flag(help: "Run without a secret: accepted only when --host is loopback (127.0.0.1, ::1, localhost).")
    var insecure = false

    @Option(help: "PEM certificate chain for TLS (with --tls-key).", completion: .file())
    var tlsCert: String?

    @Option(help: "PEM private key for TLS (with --tls-cert).", completion: .file())
    var tlsKey: String?

    func run() async throws {
        throw NotAvailableYet("fleet serve", module: .jobs)
    }
}
