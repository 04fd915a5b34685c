@testable import FleetMPI
import Testing

/// A program run without a launcher is a world of one rank: every operation works, with itself.
@Suite("A world of one rank")
struct SingleRankTests {
    @Test func everyOperationWorksOnOneRank() async throws {
        let world = try await Communicator.world()
        #expect(world.rank == 0 && world.size == 1)
        try await world.send([1, 2, 3], to: 0, tag: 4)
        #expect(try await world.recv([Int].self, from: 0, tag: 4) == [1, 2, 3])
        try await world.barrier()
        #expect(try await world.bcast("x", root: 0) == "x")
        #expect(try await world.allreduce(2.5, .sum) == 2.5)
        #expect(try await world.allreduce([1.0, 2.0], .max) == [1.0, 2.0])
        #expect(try await world.gather(7) == [7])
        #expect(try await world.scatter([9]) == 9)
        #expect(try await world.alltoall(["a"]) == ["a"])
        #expect(try await world.scan(3, .prod) == 3)
        let alone = try #require(try await world.split(color: 5))
        #expect(alone.size == 1 && alone.context != world.context)
        await #expect(throws: CommunicatorError.invalidRank(1, size: 1)) { try await world.send(0, to: 1) }
        await #expect(throws: CommunicatorError.invalidTag(-1)) { try await world.send(0, to: 0, tag: -1) }
        await #expect(throws: CommunicatorError.invalidArgument("scatter needs 1 values on its root, rank 0; it has 2")) {
            _ = try await world.scatter([1, 2])
        }
    }

    @Test func reductionsCombineInOrder() {
        let concatenate = Reduction<String> { $0 + $1 }
        #expect(concatenate("a", "b") == "ab")
        #expect(!concatenate.isCommutative)
        #expect(Reduction<Int>.sum.isCommutative && Reduction<Int>.sum(2, 3) == 5)
        #expect(Reduction<Double>.min(2, -1) == -1 && Reduction<Double>.max(2, -1) == 2)
        #expect(Reduction<Int>.prod(4, 5) == 20)
    }

    @Test func subCommunicatorContextsDiffer() {
        let a = Communicator.context(parent: 2, split: 1, color: 0)
        let b = Communicator.context(parent: 2, split: 1, color: 1)
        let c = Communicator.context(parent: 2, split: 2, color: 0)
        #expect(Set([a, b, c, 2]).count == 4)
        #expect([a, b, c].allSatisfy { $0 & 1 == 0 })
    }
}
