import Distributed
import FleetActors
import FleetWire
import Synchronization

/// A Codable error that must arrive as itself.
struct InsufficientFunds: Error, Codable, Equatable {
    var balance: Int
    var requested: Int
}

/// A non-Codable error that must arrive as a `RemoteError`.
struct Unserializable: Error, CustomStringConvertible {
    let detail: String
    var description: String { "unserializable: \(detail)" }
}

/// A value whose decoding rejects negative numbers, on the side that decodes it.
struct Positive: Codable, Sendable {
    var value: Int
    init(_ value: Int) { self.value = value }
    init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(Int.self)
        guard value > 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(value) is not positive"))
        }
    }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// Records what happened on the serving side, for assertions.
final class Probe: Sendable {
    let cancelled = Mutex(0)
    let started = Mutex(0)
}

distributed actor Calculator {
    typealias ActorSystem = FleetActorSystem
    let probe: Probe

    init(actorSystem: FleetActorSystem, probe: Probe = Probe()) {
        self.actorSystem = actorSystem
        self.probe = probe
    }

    distributed func add(_ a: Int, _ b: Int) -> Int { a + b }

    distributed func echo<Value: Codable & Sendable>(_ value: Value) -> Value { value }

    distributed func sum(_ values: [Double]) -> Double { values.reduce(0, +) }

    distributed func nothing() {}

    distributed func withdraw(_ amount: Int) throws -> Int {
        throw InsufficientFunds(balance: 10, requested: amount)
    }

    distributed func fail(_ detail: String) throws {
        throw Unserializable(detail: detail)
    }

    distributed func check(_ value: Positive) -> Int { value.value }

    /// Sleeps up to `seconds`, counting the cancellation when it comes.
    distributed func sleep(seconds: Double) async throws {
        probe.started.withLock { $0 += 1 }
        do {
            try await Task.sleep(for: .seconds(seconds))
        } catch {
            probe.cancelled.withLock { $0 += 1 }
            throw error
        }
    }

    /// Makes a new counter on this node and returns a reference to it.
    distributed func makeCounter(start: Int) -> Counter {
        Counter(actorSystem: actorSystem, value: start)
    }

    /// Calls `counter` (which may live on the caller's node) `times` times.
    distributed func bump(_ counter: Counter, times: Int) async throws -> Int {
        var last = 0
        for _ in 0..<times { last = try await counter.increment() }
        return last
    }
}

distributed actor Counter {
    typealias ActorSystem = FleetActorSystem
    var value: Int

    init(actorSystem: FleetActorSystem, value: Int = 0) {
        self.actorSystem = actorSystem
        self.value = value
    }

    distributed func increment() -> Int {
        value += 1
        return value
    }

    distributed func current() -> Int { value }
}
