// Actors shared by the in-process tests (FleetActorsTests) and the peer process the integration
// tests start (actor-test-peer): both sides must have the same types for calls to match.

import Distributed
import FleetActors
import FleetWire
import Synchronization

/// A Codable error that must arrive as itself.
public struct InsufficientFunds: Error, Codable, Equatable {
    public var balance: Int
    public var requested: Int
    public init(balance: Int, requested: Int) {
        self.balance = balance
        self.requested = requested
    }
}

/// A non-Codable error that must arrive as a `RemoteError`.
public struct Unserializable: Error, CustomStringConvertible {
    public let detail: String
    public var description: String { "unserializable: \(detail)" }
}

/// A value whose decoding rejects negative numbers, on the side that decodes it.
public struct Positive: Codable, Sendable {
    public var value: Int
    public init(_ value: Int) { self.value = value }
    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(Int.self)
        guard value > 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(value) is not positive"))
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// Records what happened on the serving side, for assertions.
public final class Probe: Sendable {
    public let cancelled = Mutex(0)
    public let started = Mutex(0)
    public init() {}
}

public distributed actor Calculator {
    public typealias ActorSystem = FleetActorSystem
    let probe: Probe

    public init(actorSystem: FleetActorSystem, probe: Probe = Probe()) {
        self.actorSystem = actorSystem
        self.probe = probe
    }

    public distributed func add(_ a: Int, _ b: Int) -> Int { a + b }

    public distributed func echo<Value: Codable & Sendable>(_ value: Value) -> Value { value }

    public distributed func sum(_ values: [Double]) -> Double { values.reduce(0, +) }

    public distributed func nothing() {}

    public distributed func withdraw(_ amount: Int) throws -> Int {
        throw InsufficientFunds(balance: 10, requested: amount)
    }

    public distributed func fail(_ detail: String) throws {
        throw Unserializable(detail: detail)
    }

    public distributed func check(_ value: Positive) -> Int { value.value }

    /// Sleeps up to `seconds`, counting the cancellation when it comes.
    public distributed func sleep(seconds: Double) async throws {
        probe.started.withLock { $0 += 1 }
        do {
            try await Task.sleep(for: .seconds(seconds))
        } catch {
            probe.cancelled.withLock { $0 += 1 }
            throw error
        }
    }

    /// Squares `values` in child tasks of a task group and returns them in order.
    public distributed func squaresInTaskGroup(_ values: [Int]) async throws -> [Int] {
        try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for (index, value) in values.enumerated() {
                group.addTask {
                    await Task.yield()
                    return (index, value * value)
                }
            }
            var results = [Int?](repeating: nil, count: values.count)
            for try await (index, square) in group { results[index] = square }
            return results.map { $0! }
        }
    }

    /// How many sleeps started, and how many were cancelled, on this node.
    public distributed func sleeps() -> [Int] {
        [probe.started.withLock { $0 }, probe.cancelled.withLock { $0 }]
    }

    /// Makes a new counter on this node and returns a reference to it.
    public distributed func makeCounter(start: Int) -> Counter {
        Counter(actorSystem: actorSystem, value: start)
    }

    /// Calls `counter` (which may live on the caller's node) `times` times.
    public distributed func bump(_ counter: Counter, times: Int) async throws -> Int {
        var last = 0
        for _ in 0..<times { last = try await counter.increment() }
        return last
    }
}

public distributed actor Counter {
    public typealias ActorSystem = FleetActorSystem
    var value: Int

    public init(actorSystem: FleetActorSystem, value: Int = 0) {
        self.actorSystem = actorSystem
        self.value = value
    }

    public distributed func increment() -> Int {
        value += 1
        return value
    }

    public distributed func current() -> Int { value }
}

/// Holds references to counters that live on other nodes, and lets them go on request.
public distributed actor Keeper {
    public typealias ActorSystem = FleetActorSystem
    var counters: [Counter] = []

    public init(actorSystem: FleetActorSystem) {
        self.actorSystem = actorSystem
    }

    public distributed func hold(_ counter: Counter) {
        counters.append(counter)
    }

    /// Lets go of the oldest reference held.
    public distributed func dropOne() {
        if !counters.isEmpty { counters.removeFirst() }
    }

    /// Increments every counter held (calls back to where they live); returns the last value.
    public distributed func bumpAll() async throws -> Int {
        var last = 0
        for counter in counters { last = try await counter.increment() }
        return last
    }
}
