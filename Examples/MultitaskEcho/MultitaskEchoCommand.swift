// multitask-echo: the seed's second multitask example — a listener task that adds a
// client_handler task for every connection, all on one thread.
//
//     swift run multitask-echo --port 7000 &
//     nc 127.0.0.1 7000

import ArgumentParser
import FleetExamples
import Foundation

/// `multitask-echo [--port PORT] [--host HOST]`.
@main
struct MultitaskEchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "multitask-echo",
        abstract: "The seed's multitask echo server: a listener and a client_handler per connection, on one thread.",
        discussion: "Prints 'listening on HOST:PORT' when ready and serves until stopped (Ctrl-C)."
    )

    @Option(help: "The port to listen on; 0 picks a free one.")
    var port: Int = 7000

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535.") }
    }

    func run() async throws {
        let host = host
        try await MultitaskEcho.serve(host: host, port: port) { port in
            print("listening on \(host):\(port)")
            fflush(nil)
        }
    }
}
