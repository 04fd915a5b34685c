import CFleetMPI
import Foundation
import Testing

/// The shared-memory rings on their own (the C side of ``SharedMemoryLinks``): records arrive
/// whole, in order, lap after lap, and what an earlier lap left in the ring never passes for a
/// record.
@Suite("Shared-memory rings")
struct SharedMemoryRingTests {
    /// A mapped segment of two ranks with the smallest rings, so that a few hundred messages
    /// wrap around many times.
    final class Segment: @unchecked Sendable {
        // Safe to share: the tests' producer and consumer touch disjoint ends of one ring, as
        // the ring's protocol intends, and nothing else changes these fields after init.
        let fd: Int32
        let base: UnsafeMutableRawPointer
        let size: Int
        let capacity: UInt64

        init(capacity: UInt64 = 4096) throws {
            fd = fleet_shm_create(2, capacity)
            try #require(fd >= 0, "fleet_shm_create failed: \(-fd)")
            var ringCapacity: UInt64 = 0, mapped = 0, error: Int32 = 0
            let base = fleet_shm_map(fd, 2, &ringCapacity, &mapped, &error)
            try #require(base != nil, "fleet_shm_map failed: \(error)")
            self.base = base!
            self.size = mapped
            self.capacity = ringCapacity
        }

        /// A segment formatted in memory shared some other way (as an MPI library's shared
        /// window is), which held garbage before: every byte 0xFF.
        init(formattingGarbageWith capacity: UInt64) throws {
            let size = fleet_shm_segment_size(2, capacity)
            let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
            try #require(base != MAP_FAILED)
            memset(base!, 0xFF, size)
            try #require(fleet_shm_format(base!, 2, capacity) == 0)
            var ringCapacity: UInt64 = 0
            try #require(fleet_shm_check(base!, size, 2, &ringCapacity) == 0)
            fleet_shm_touch(base!, 0)
            fleet_shm_touch(base!, 1)
            self.fd = -1
            self.base = base!
            self.size = size
            self.capacity = ringCapacity
        }

        deinit {
            munmap(base, size)
            if fd >= 0 { close(fd) }
        }

        /// Writes as much of `bytes` as fits now as one record from rank 0 to rank 1.
        func put(_ bytes: ArraySlice<UInt8>, first: Bool, total: Int) -> Int {
            let flags = UInt32(FLEET_SHM_LAST) | (first ? UInt32(FLEET_SHM_FIRST) : 0)
            return Int(bytes.withUnsafeBytes { fleet_shm_put(base, 0, 1, flags, UInt64(total), $0.baseAddress, UInt64($0.count)) })
        }

        /// The next record for rank 1, consumed: its payload and flags.
        func take() -> (payload: [UInt8], flags: UInt32, total: UInt64)? {
            var payload: UnsafePointer<UInt8>?
            var length: UInt32 = 0, flags: UInt32 = 0, total: UInt64 = 0
            guard fleet_shm_peek(base, 0, 1, &payload, &length, &flags, &total) == 1 else { return nil }
            let bytes = Array(UnsafeBufferPointer(start: payload, count: Int(length)))
            fleet_shm_consume(base, 0, 1)
            return (bytes, flags, total)
        }
    }

    /// Message `index`: a length that varies (some longer than a record, so they travel in
    /// fragments), filled mostly with 0xFF — bytes that, read as a record's header, would look
    /// ready with every flag set.
    static func message(_ index: Int) -> [UInt8] {
        let length = 1 + (index &* 7919) % 2600
        return (0..<length).map { $0 % 97 == 0 ? UInt8(truncatingIfNeeded: index) : 0xFF }
    }

    /// Reassembles messages from records; checks each against ``message(_:)``.
    struct Receiver {
        var next = 0
        var partial: [UInt8] = []

        mutating func take(_ record: (payload: [UInt8], flags: UInt32, total: UInt64)) {
            if record.flags & UInt32(FLEET_SHM_FIRST) != 0 {
                #expect(partial.isEmpty, "message \(next) began before the last one ended")
                let total = SharedMemoryRingTests.message(next).count
                #expect(record.total == UInt64(total), "message \(next) announced \(record.total) bytes, \(total) sent")
            }
            partial += record.payload
            if record.flags & UInt32(FLEET_SHM_LAST) != 0 {
                let expected = SharedMemoryRingTests.message(next)
                let intact = partial == expected
                #expect(intact, "message \(next) arrived altered: \(partial.count) bytes, \(expected.count) sent")
                partial = []
                next += 1
            }
        }
    }

    @Test(arguments: ["memory file", "formatted garbage"])
    func recordsArriveWholeAndInOrderLapAfterLap(segment kind: String) throws {
        let segment = try kind == "memory file" ? Segment() : Segment(formattingGarbageWith: 4096)
        var receiver = Receiver()
        let count = 600
        for index in 0..<count {
            let bytes = Self.message(index)
            var sent = 0, tries = 0
            while sent < bytes.count {
                tries += 1
                try #require(tries < 10_000, "message \(index) never fitted")
                let written = segment.put(bytes[sent...], first: sent == 0, total: bytes.count)
                if written < 0 {
                    // Full: the consumer drains every record; then the ring reads as empty.
                    while let record = segment.take() { receiver.take(record) }
                    #expect(segment.take() == nil)
                    continue
                }
                sent += written
            }
            // Now and then the consumer keeps up, so that records start at every offset.
            if index % 3 == 0, let record = segment.take() { receiver.take(record) }
        }
        while let record = segment.take() { receiver.take(record) }
        #expect(receiver.next == count)
        #expect(receiver.partial.isEmpty)
        #expect(segment.take() == nil)
    }

    @Test func aProducerAndAConsumerOnTwoThreadsAgree() async throws {
        let segment = try Segment()
        let count = 5_000
        let producer = Thread {
            for index in 0..<count {
                let bytes = Self.message(index)
                var sent = 0
                let deadline = Date().addingTimeInterval(30)
                while sent < bytes.count, Date() < deadline {
                    let written = segment.put(bytes[sent...], first: sent == 0, total: bytes.count)
                    if written < 0 { fleet_shm_relax() } else { sent += written }
                }
            }
        }
        producer.start()
        var receiver = Receiver()
        let deadline = Date().addingTimeInterval(30)
        while receiver.next < count, Date() < deadline {
            if let record = segment.take() { receiver.take(record) } else { fleet_shm_relax() }
        }
        #expect(receiver.next == count)
        while !producer.isFinished, Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
    }

    @Test func aSegmentFormattedInPlaceChecksAsOneAndOnlyThatOne() throws {
        let capacity: UInt64 = 8192
        let size = fleet_shm_segment_size(2, capacity)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { memory.deallocate() }
        memset(memory, 0xFF, size)
        var found: UInt64 = 0
        #expect(fleet_shm_check(memory, size, 2, &found) == -EINVAL, "garbage passed for a segment")
        #expect(fleet_shm_format(memory, 2, 5000) == -EINVAL, "a ring of 5000 bytes")
        #expect(fleet_shm_format(memory, 2, 2048) == -EINVAL, "a ring under 4 KiB")
        #expect(fleet_shm_format(memory, 0, capacity) == -EINVAL, "no ranks")
        #expect(fleet_shm_format(memory, 2, capacity) == 0)
        #expect(fleet_shm_check(memory, size, 2, &found) == 0)
        #expect(found == capacity)
        #expect(fleet_shm_check(memory, size, 3, &found) == -EINVAL, "a segment of 2 ranks passed for one of 3")
        // Nothing is waiting in any ring, whatever the memory held before.
        for from in 0..<UInt32(2) {
            for to in 0..<UInt32(2) { #expect(fleet_shm_pending(memory, from, to) == 0) }
        }
    }
}
