/// A loop's suspended tasks by waiter id, found without hashing.
///
/// An id names a slot (its low 24 bits: up to 16 M waits at once) and the slot's use (its high 40
/// bits, counted from 1, so no id is 0; they wrap after 10^12 uses of one slot). Parking and
/// finishing a wait are array accesses; an event for a wait that already finished — its slot
/// empty or reused — finds another id there and does nothing.
///
/// Every id from ``reserve()`` ends in ``take(_:)`` (after ``park(_:_:)``) or ``release(_:)``.
/// Loop thread only (see ``Reactor``).
///
/// - Complexity: O(1) for every operation, amortized over the growth of the slot array.
struct WaiterTable {
    private struct Slot {
        /// The id the slot was reserved under last (its high bits count the uses); 0 before.
        var id: UInt64
        /// Whether `id` holds the slot now.
        var isReserved: Bool
        var continuation: UnsafeContinuation<Void, any Error>?
    }

    private static let slotLimit = 1 << 24
    private static let useLimit: UInt64 = (1 << 40) - 1

    private var slots: [Slot] = []
    private var free: [UInt32] = []

    /// How many waits are parked.
    private(set) var count = 0

    /// A fresh id, whose slot is held until the wait is taken or released.
    mutating func reserve() -> UInt64 {
        let index: Int
        if let reused = free.popLast() {
            index = Int(reused)
        } else {
            index = slots.count
            precondition(index < WaiterTable.slotLimit, "FleetCooperative: more than 16 M waits at once")
            slots.append(Slot(id: 0, isReserved: false, continuation: nil))
        }
        // Uses count from 1 (and skip 0 when they wrap), so that no id is 0.
        let previous = slots[index].id >> 24
        let id = (previous == WaiterTable.useLimit ? 1 : previous + 1) << 24 | UInt64(index)
        slots[index].id = id
        slots[index].isReserved = true
        return id
    }

    /// The slot of `id`, if `id` holds it.
    @inline(__always)
    private func index(of id: UInt64) -> Int? {
        let index = Int(truncatingIfNeeded: id & UInt64(WaiterTable.slotLimit - 1))
        return index < slots.count && slots[index].isReserved && slots[index].id == id ? index : nil
    }

    /// Parks the task waiting as `id` (reserved and not yet parked).
    mutating func park(_ id: UInt64, _ continuation: UnsafeContinuation<Void, any Error>) {
        guard let index = index(of: id), slots[index].continuation == nil else {
            preconditionFailure("FleetCooperative: waiter \(id) is not reserved")
        }
        slots[index].continuation = continuation
        count += 1
    }

    /// Whether the wait `id` is parked.
    func contains(_ id: UInt64) -> Bool {
        guard let index = index(of: id) else { return false }
        return slots[index].continuation != nil
    }

    /// Ends the wait `id` if it is parked: frees its slot and returns its continuation.
    mutating func take(_ id: UInt64) -> UnsafeContinuation<Void, any Error>? {
        guard let index = index(of: id), let continuation = slots[index].continuation else { return nil }
        slots[index].continuation = nil
        slots[index].isReserved = false
        free.append(UInt32(truncatingIfNeeded: index))
        count -= 1
        return continuation
    }

    /// Frees the slot of `id`, reserved and never parked (the wait ended before it began).
    mutating func release(_ id: UInt64) {
        guard let index = index(of: id), slots[index].continuation == nil else { return }
        slots[index].isReserved = false
        free.append(UInt32(truncatingIfNeeded: index))
    }
}
