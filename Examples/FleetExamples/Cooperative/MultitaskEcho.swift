import FleetCooperative

/// The seed's second multitask example: a listener that adds a `client_handler` task for each
/// connection; every handler echoes what it receives.
///
/// ```python
/// def listener(sock):
///     while True:
///         conn, address = (yield multitask.accept(sock))    # WAIT
///         multitask.add(client_handler(conn))
///
/// def client_handler(sock):
///     while True:
///         request = (yield multitask.recv(sock, 1024))      # WAIT
///         if not request:
///             break
///         response = handle_request(request)
///         yield multitask.send(sock, response)              # WAIT
/// ```
public enum MultitaskEcho {
    /// The seed's `listener`: accepts connections and adds a ``clientHandler(_:)`` for each.
    /// Returns when the listener is closed; a failing connection ends only its own handler.
    public static func listener(_ sock: TCPListener, loop: isolated CooperativeLoop) async throws {
        while true {
            let connection: TCPConnection
            do {
                connection = try await sock.accept()
            } catch let error as SocketError where error.isClosed {
                return
            }
            loop.add {
                // A peer that resets or misbehaves ends this handler, not the loop.
                try? await clientHandler(connection)
            }
        }
    }

    /// The seed's `client_handler`: receives up to 1024 bytes, answers with
    /// ``handleRequest(_:)``, until the peer closes.
    ///
    /// It runs on the caller's executor (`isolation`), that is on the loop's thread.
    public static func clientHandler(_ sock: TCPConnection, isolation: isolated (any Actor)? = #isolation) async throws {
        defer { sock.close() }
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = try await sock.recv(into: &buffer)
            if count == 0 { break }
            try await sock.send(handleRequest(buffer[..<count]))
        }
    }

    /// The seed's `handle_request`: here, an echo. It takes and returns a slice of the
    /// handler's receive buffer, so an echo copies nothing.
    public static func handleRequest(_ request: ArraySlice<UInt8>) -> ArraySlice<UInt8> { request }

    /// `multitask-echo --port PORT`: serves on 127.0.0.1 until the process is stopped; calls
    /// `ready` with the bound port.
    public static func serve(host: String = "127.0.0.1", port: Int, ready: @escaping @Sendable (Int) -> Void) async throws {
        try await CooperativeLoop.run { loop in
            let sock = try loop.listen(host: host, port: port)
            ready(sock.localPort)
            try await listener(sock, loop: loop)
        }
    }
}
