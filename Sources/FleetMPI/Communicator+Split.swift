extension Communicator {
    /// Splits the communicator into disjoint sub-communicators (`MPI_Comm_split`): ranks that
    /// pass the same `color` end up together, ordered by `key` (then by their rank here).
    /// Collective: every rank calls it.
    ///
    /// ```swift
    /// // Rows of a 2-D grid of ranks: each row is a communicator of its own.
    /// let row = try await world.split(color: world.rank / columns, key: world.rank % columns)!
    /// let rowSum = try await row.allreduce(value, .sum)
    /// ```
    ///
    /// - Parameter color: the group to join; `nil` (`MPI_UNDEFINED`) joins none.
    /// - Returns: this rank's new communicator, with its own rank numbers and its own message
    ///   space (its messages never match the parent's); `nil` for a `nil` color.
    nonisolated(nonsending) public func split(color: Int?, key: Int = 0) async throws -> Communicator? {
        let number = nextSplitNumber()
        let everyone = try await allgather(Membership(color: color, key: key))
        guard let color else { return nil }
        let together = everyone.indices
            .filter { everyone[$0].color == color }
            .sorted { (everyone[$0].key, $0) < (everyone[$1].key, $1) }
        return Communicator(
            world: world, members: together.map { members[$0] },
            context: Self.context(parent: context, split: number, color: color))
    }

    private struct Membership: Codable, Sendable {
        var color: Int?
        var key: Int
    }

    /// The context of a sub-communicator: the same on every member, since each derives it from
    /// the parent's, the split's number (every rank splits in the same order) and the color.
    /// Even, so that `context | 1` stays its collectives' own.
    static func context(parent: UInt64, split: UInt64, color: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a over the three numbers' bytes
        for word in [parent, split, UInt64(bitPattern: Int64(color))] {
            for shift in stride(from: 0, to: 64, by: 8) {
                hash = (hash ^ ((word >> UInt64(shift)) & 0xff)) &* 0x0000_0100_0000_01b3
            }
        }
        return (hash & ~1) | 4   // never the world's (2)
    }
}
