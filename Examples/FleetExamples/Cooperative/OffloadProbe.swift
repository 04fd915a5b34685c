import FleetCooperative
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Shows what ``CooperativeLoop/offload(_:)`` is for: an echo server on one loop keeps
/// answering a pinging client while another task of the loop offloads a computation, and stops
/// answering while the same computation runs inline on the loop's thread.
public enum OffloadProbe {
    /// What happened, in order.
    public enum Event: Sendable, Equatable {
        /// The computation started.
        case computeStarted
        /// The computation finished.
        case computeFinished
        /// The client got an echo back, `latency` after sending it.
        case reply(latency: Duration)
    }

    /// The events of one run, in the order they happened.
    public struct Report: Sendable {
        /// Every event.
        public var events: [Event]

        /// Echoes that came back while the computation ran.
        public var repliesDuringComputation: Int {
            var computing = false, count = 0
            for event in events {
                switch event {
                case .computeStarted: computing = true
                case .computeFinished: computing = false
                case .reply: if computing { count += 1 }
                }
            }
            return count
        }

        /// The longest echo round trip.
        public var worstLatency: Duration {
            events.reduce(.zero) { if case .reply(let latency) = $1 { max($0, latency) } else { $0 } }
        }
    }

    /// A shared, ordered event log (the server's loop and the client's loop both write to it).
    public final class Log: Sendable {
        private let events = Mutex<[Event]>([])

        /// Appends `event`.
        public func record(_ event: Event) { events.withLock { $0.append(event) } }

        /// Replies recorded since the computation started.
        public var repliesSinceComputeStarted: Int {
            events.withLock { events in
                guard let start = events.firstIndex(of: .computeStarted) else { return 0 }
                return events[start...].count { if case .reply = $0 { true } else { false } }
            }
        }

        /// Every event so far.
        public var all: [Event] { events.withLock { $0 } }
    }

    /// Runs the echo server on one loop and a client pinging it every 10 ms on another; once the
    /// client has had its first echo, a task on the server's loop runs `work` — offloaded or
    /// inline — and the client stops after the computation has finished and two more echoes.
    ///
    /// - Parameter work: The computation; it is given the log, so a test can make it wait for
    ///   echoes (an ordering, not a timing).
    public static func run(offload: Bool, work: @escaping @Sendable (Log) -> Void) async throws -> Report {
        let log = Log()
        let server = CooperativeLoop()
        let client = CooperativeLoop()
        let port = Mutex<Int>(0)
        let finished = Atomic<Bool>(false)
        let clientDone = Atomic<Bool>(false)
        await server.add { loop in
            let sock = try loop.listen(port: 0)
            port.withLock { $0 = sock.localPort }
            let echo = loop.add { try await MultitaskEcho.listener(sock, loop: loop) }
            // Wait for the client's first echo, then compute.
            while !log.all.contains(where: { if case .reply = $0 { true } else { false } }) {
                if clientDone.load(ordering: .relaxed) { sock.close(); return }
                try await loop.sleep(for: .milliseconds(5))
            }
            log.record(.computeStarted)
            if offload {
                try await loop.offload { work(log) }
            } else {
                work(log)
            }
            log.record(.computeFinished)
            finished.store(true, ordering: .relaxed)
            // The client closes its connection when done; then stop listening.
            while !clientDone.load(ordering: .relaxed) { try await loop.sleep(for: .milliseconds(5)) }
            sock.close()
            try await echo.value
        }
        async let serverRun: Void = server.run()
        while port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let serverPort = port.withLock { $0 }
        await client.add { loop in
            let connection = try await loop.connect(host: "127.0.0.1", port: serverPort, timeout: .seconds(5))
            defer { connection.close() }
            let message = [UInt8](repeating: 7, count: 64)
            var after = 0
            for _ in 0..<10_000 {
                let sent = ContinuousClock.now
                try await connection.send(message)
                var received = 0
                while received < message.count {
                    let bytes = try await connection.recv(max: 1024, timeout: .seconds(30))
                    guard !bytes.isEmpty else { throw SocketError(operation: "recv", errno: ECONNRESET) }
                    received += bytes.count
                }
                log.record(.reply(latency: ContinuousClock.now - sent))
                if finished.load(ordering: .relaxed) {
                    after += 1
                    if after == 2 { break }
                }
                try await loop.sleep(for: .milliseconds(10))
            }
        }
        var clientError: (any Error)?
        do { try await client.run() } catch { clientError = error }
        clientDone.store(true, ordering: .relaxed)
        try await serverRun
        if let clientError { throw clientError }
        return Report(events: log.all)
    }

    /// Spins the CPU for `duration`: the demo's computation.
    public static func spin(for duration: Duration) -> UInt64 {
        let end = ContinuousClock.now + duration
        var x: UInt64 = 88_172_645_463_325_252
        while ContinuousClock.now < end {
            for _ in 0..<10_000 { x ^= x << 13; x ^= x >> 7; x ^= x << 17 }
        }
        return x
    }
}
