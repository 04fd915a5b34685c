@testable import FleetCooperative
import Testing

@Suite("WaiterTable")
struct WaiterTableTests {
    @Test func aWaitIsFoundByItsIDOnceAndAStaleIDFindsNothing() async throws {
        var table = WaiterTable()
        let first = table.reserve()
        #expect(first != 0)
        #expect(!table.contains(first))
        table.release(first)
        table.release(first)   // A second release of the same id changes nothing.

        // The freed slot is reused under another id; the old one no longer matches.
        let second = table.reserve()
        let third = table.reserve()
        #expect(Set([first, second, third]).count == 3)
        #expect(second & 0xFF_FFFF == first & 0xFF_FFFF)   // same slot, next use
        #expect(third & 0xFF_FFFF != first & 0xFF_FFFF)     // a slot of its own

        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            table.park(second, continuation)
            #expect(table.count == 1)
            #expect(table.contains(second))
            #expect(table.take(first) == nil)      // stale: its slot now holds `second`
            #expect(table.take(third) == nil)      // reserved, never parked
            let waiting = table.take(second)
            #expect(table.take(second) == nil)     // taken once
            #expect(table.count == 0)
            if let waiting {
                waiting.resume()
            } else {
                continuation.resume(throwing: Boom(code: 1))
            }
        }
        table.release(third)

        // Both slots are free again and come back under fresh ids.
        let fourth = table.reserve(), fifth = table.reserve()
        #expect(Set([first, second, third, fourth, fifth]).count == 5)
    }
}
