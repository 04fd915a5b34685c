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
        /// The client sent request `number`.
        case sent(number: Int)
        /// The client got the echo of request `number` back, `latency` after sending it.
        case reply(number: Int, latency: Duration)
    }

    /// The events of one run, in the order they happened.
    public struct Report: Sendable {
        /// Every event.
        public var events: [Event]

        /// Requests sent after the computation started whose echoes came back before it
        /// finished: the server answered them while the computation ran.
        public var repliesDuringComputation: Int { OffloadProbe.repliesDuringComputation(events) }

        /// The longest echo round trip.
        public var worstLatency: Duration {
            events.reduce(.zero) { if case .reply(_, let latency) = $1 { max($0, latency) } else { $0 } }
        }
    }

    /// A shared, ordered event log (the server's loop and the client's loop both write to it).
    public final class Log: Sendable {
        private let events = Mutex<[Event]>([])

        /// Appends `event`.
        public func record(_ event: Event) { events.withLock { $0.append(event) } }

        /// Requests sent after the computation started and answered so far.
        public var repliesSinceComputeStarted: Int {
            OffloadProbe.repliesDuringComputation(events.withLock { $0 })
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
            for number in 0..<10_000 {
                log.record(.sent(number: number))
                let sent = ContinuousClock.now
                try await connection.send(message)
                var received = 0
                while received < message.count {
                    let bytes = try await connection.recv(max: 1024, timeout: .seconds(30))
                    guard !bytes.isEmpty else { throw SocketError(operation: "recv", errno: ECONNRESET) }
                    received += bytes.count
                }
                log.record(.reply(number: number, latency: ContinuousClock.now - sent))
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

    /// Counts the requests sent after `.computeStarted` whose replies precede `.computeFinished`
    /// (or the end of `events`).
    static func repliesDuringComputation(_ events: [Event]) -> Int {
        guard let start = events.firstIndex(of: .computeStarted) else { return 0 }
        let end = events.firstIndex(of: .computeFinished) ?? events.endIndex
        var sentDuring = Set<Int>()
        var count = 0
        for event in events[start..<end] {
            switch event {
            case .sent(let number): sentDuring.insert(number)
            case .reply(let number, _): if sentDuring.contains(number) { count += 1 }
            default: break
            }
        }
        return count
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
