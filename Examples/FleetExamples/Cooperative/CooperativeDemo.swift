import FleetCooperative
import Foundation

/// `fleet demo cooperative`: the seed's multitask examples on one ``CooperativeLoop`` — the two
/// printers, the echo server with a short client session on loopback — and ``OffloadProbe``'s
/// comparison of a 1-second computation offloaded and inline.
public enum CooperativeDemo {
    /// Runs the demo, printing as it goes.
    public static func run(computation: Duration = .seconds(1)) async throws {
        print("multitask-printer --count 3: two printers on one loop, each yields after every line:")
        try await MultitaskPrinter.run(count: 3) { print("  \($0)") }

        print("\nmultitask-echo: the seed's listener and client_handler on one loop; a client task on the")
        print("same loop connects over loopback and sends three requests:")
        let transcript = try await CooperativeLoop.run { loop -> [String] in
            let sock = try loop.listen(port: 0)
            let server = loop.add { try await MultitaskEcho.listener(sock, loop: loop) }
            var lines = ["  listening on 127.0.0.1:\(sock.localPort)"]
            let connection = try await loop.connect(host: "127.0.0.1", port: sock.localPort, timeout: .seconds(5))
            for request in ["hello", "multitask", "goodbye"] {
                try await connection.send(request)
                let reply = try await connection.recv(max: 1024, timeout: .seconds(5))
                lines.append("  sent \"\(request)\", received \"\(String(decoding: reply, as: UTF8.self))\"")
            }
            connection.close()
            sock.close()
            try await server.value
            return lines
        }
        transcript.forEach { print($0) }

        print("\noffload: the echo server keeps answering a client that pings every 10 ms while another task")
        print("of its loop runs a \(computation) computation — offloaded to a thread, then inline on the loop:")
        for offload in [true, false] {
            let report = try await OffloadProbe.run(offload: offload) { _ in _ = OffloadProbe.spin(for: computation) }
            let worst = report.worstLatency.inMilliseconds
            print("  \(offload ? "offload { }" : "inline     "): \(report.repliesDuringComputation) echoes answered during the computation, "
                  + "worst round trip \(String(format: "%.1f", worst)) ms")
        }
        fflush(nil)
    }
}
