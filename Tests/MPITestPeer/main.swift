// mpi-test-peer: the program the FleetMPI integration tests launch as ranks
// (`fleet launch -n N -- MPITestPeer SCENARIO`). Each rank checks what it got against a serial
// computation and prints `rank R ok NAME` or `rank R FAIL NAME: detail`; rank 0 ends with
// `checks: N failed` over all ranks.

import Fleet
import FleetMPI
import FleetWire
import Foundation
import Synchronization

struct Point: Codable, Sendable, Equatable {
    var x: Int
    var label: String
}

struct Refusal: Error, CustomStringConvertible {
    var description: String { "rank 2 refuses to go on" }
}

/// A farm job: `n` squared, and the process that computed it (after a few milliseconds, so
/// that every worker rank gets some of the jobs).
enum FarmSquare: JobFunction {
    static func run(_ n: Int) -> [Int] {
        usleep(5_000)
        return [n * n, Int(getpid())]
    }
}

/// A farm job that throws.
enum FarmRefusal: JobFunction {
    struct Refused: Error, Codable, CustomStringConvertible {
        var n: Int
        var description: String { "job \(n) refused" }
    }
    static func run(_ n: Int) throws -> Int { throw Refused(n: n) }
}

/// A farm job that kills the rank running it.
enum FarmDeath: JobFunction {
    static func run(_ n: Int) -> Int {
        kill(getpid(), SIGKILL)
        return n
    }
}

let scenario = CommandLine.arguments.dropFirst().first ?? "collectives"
/// Checks failed on this rank so far.
let failures = Mutex(0)

/// Prints a line and flushes it: a rank may end abruptly (that is what some scenarios test).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func check(_ world: Communicator, _ name: String, _ condition: Bool, _ detail: @autoclosure () -> String = "") {
    if condition {
        say("rank \(world.rank) ok \(name)")
    } else {
        failures.withLock { $0 += 1 }
        say("rank \(world.rank) FAIL \(name): \(detail())")
    }
}

func collectives(_ world: Communicator) async throws {
    let rank = world.rank, size = world.size
    let ranks = Array(0..<size)

    try await world.barrier()
    check(world, "barrier", true)

    let point = try await world.bcast(rank == 0 ? Point(x: 42, label: "from zero") : nil, root: 0)
    check(world, "bcast root 0", point == Point(x: 42, label: "from zero"), "\(point)")
    let last = size - 1
    let table = try await world.bcast(rank == last ? ["size": size, "root": last] : nil, root: last)
    check(world, "bcast last root", table == ["size": size, "root": last], "\(table)")

    let scatterRoot = 1 % size
    let mine = try await world.scatter(rank == scatterRoot ? ranks.map { "v\($0)" } : nil, root: scatterRoot)
    check(world, "scatter", mine == "v\(rank)", mine)

    let gathered = try await world.gather(rank * rank, root: last)
    check(world, "gather", rank == last ? gathered == ranks.map { $0 * $0 } : gathered == nil, "\(String(describing: gathered))")

    let everyone = try await world.allgather("r\(rank)")
    check(world, "allgather", everyone == ranks.map { "r\($0)" }, "\(everyone)")

    let sum = try await world.reduce(rank + 1, .sum, root: 0)
    check(world, "reduce sum", rank == 0 ? sum == size * (size + 1) / 2 : sum == nil, "\(String(describing: sum))")
    let product = try await world.reduce(rank + 1, .prod, root: last)
    check(world, "reduce prod", rank == last ? product == (1...size).reduce(1, *) : product == nil, "\(String(describing: product))")

    check(world, "allreduce sum", try await world.allreduce(rank + 1, .sum) == size * (size + 1) / 2)
    check(world, "allreduce min", try await world.allreduce(Double(rank) + 0.5, .min) == 0.5)
    check(world, "allreduce max", try await world.allreduce(rank * 3, .max) == (size - 1) * 3)
    // Not commutative: the result shows the order the values were combined in.
    let order = try await world.allreduce("\(rank)", Reduction { $0 + "," + $1 })
    check(world, "allreduce in rank order", order == ranks.map(String.init).joined(separator: ","), order)

    let small = try await world.allreduce([rank, rank * 2, 1], .sum)
    let rankSum = ranks.reduce(0, +)
    check(world, "allreduce array", small == [rankSum, rankSum * 2, size], "\(small)")

    // Large enough for the ring; integers in doubles add exactly.
    let count = 100_003
    let large = try await world.allreduce((0..<count).map { Double($0 % 97) * Double(rank + 1) }, .sum)
    let factor = Double(size * (size + 1) / 2)
    check(world, "allreduce ring", large == (0..<count).map { Double($0 % 97) * factor }, "first \(large.prefix(3))")
    let largest = try await world.allreduce((0..<count).map { ($0 * 7 + rank * 13) % 1_000 }, .max)
    check(world, "allreduce ring max", largest == (0..<count).map { index in ranks.map { (index * 7 + $0 * 13) % 1_000 }.max()! })
    // In place: around the ring in the array's own memory, and (small) the ordinary way.
    var field = (0..<count).map { Double($0 % 97) * Double(rank + 1) }
    try await world.allreduce(inPlace: &field, .sum)
    check(world, "allreduce in place", field == (0..<count).map { Double($0 % 97) * factor }, "first \(field.prefix(3))")
    var few = [rank, 1]
    try await world.allreduce(inPlace: &few, .sum)
    check(world, "allreduce in place, small", few == [rankSum, size], "\(few)")
    // Into a result made beforehand, twice into the same one; the values stay as they were.
    let ours = (0..<count).map { Double($0 % 97) * Double(rank + 1) }
    var total = [Double](repeating: -1, count: count)
    try await world.allreduce(ours, into: &total, .sum)
    try await world.allreduce(ours, into: &total, .sum)
    check(world, "allreduce into a result", total == (0..<count).map { Double($0 % 97) * factor } && ours[1] == Double(rank + 1),
          "first \(total.prefix(3))")
    // A million elements and three (chunks of uneven lengths, larger than a ring's records):
    // a new array, in place, and into a result.
    let many = 1_000_003
    let segmented = try await world.allreduce((0..<many).map { Double($0 % 89) * Double(rank + 1) }, .sum)
    let expectedMany = (0..<many).map { Double($0 % 89) * factor }
    check(world, "allreduce ring of a million", segmented == expectedMany, "first \(segmented.prefix(3))")
    var manyField = (0..<many).map { Double($0 % 89) * Double(rank + 1) }
    try await world.allreduce(inPlace: &manyField, .sum)
    check(world, "allreduce in place of a million", manyField == expectedMany)
    let manyOurs = (0..<many).map { Double($0 % 89) * Double(rank + 1) }
    var manyTotal = [Double](repeating: -1, count: many)
    try await world.allreduce(manyOurs, into: &manyTotal, .sum)
    check(world, "allreduce into a result of a million", manyTotal == expectedMany && manyOurs[2] == 2 * Double(rank + 1))
    let manyLargest = try await world.allreduce((0..<many).map { Int32(($0 * 7 + rank * 13) % 1_000) }, .max)
    check(world, "allreduce max of a million", manyLargest == (0..<many).map { index in Int32(ranks.map { (index * 7 + $0 * 13) % 1_000 }.max()!) })
    var short = [Double](repeating: 0, count: 2)
    do {
        try await world.allreduce([1.0, 2.0, 3.0], into: &short, .sum)
        check(world, "allreduce into a result too short", false, "no error")
    } catch CommunicatorError.invalidArgument {
        check(world, "allreduce into a result too short", short == [0, 0])
    }
    var emptyField: [Double] = []
    try await world.allreduce(inPlace: &emptyField, .sum)
    let emptyResult = try await world.allreduce([Int32](), .max)
    check(world, "allreduce of empty arrays", emptyField.isEmpty && emptyResult.isEmpty)
    let floatProduct = try await world.allreduce(Float(rank + 1), .prod)
    check(world, "allreduce prod", floatProduct == Float((1...size).reduce(1, *)), "\(floatProduct)")
    // Doubles and Floats travel as their bytes: in a tree, and in a prefix.
    let quarters = try await world.reduce(Double(rank) * 0.25, .sum, root: last)
    check(world, "reduce doubles", rank == last ? quarters == Double(size * (size - 1)) / 8 : quarters == nil, "\(String(describing: quarters))")
    let halves = try await world.scan(Float(rank) + 0.5, .sum)
    check(world, "scan floats", halves == Float(rank * (rank + 1)) / 2 + Float(rank + 1) / 2, "\(halves)")

    let exchanged = try await world.alltoall(ranks.map { rank * 100 + $0 })
    check(world, "alltoall", exchanged == ranks.map { $0 * 100 + rank }, "\(exchanged)")

    check(world, "scan sum", try await world.scan(rank + 1, .sum) == (rank + 1) * (rank + 2) / 2)
    let prefix = try await world.scan("\(rank)", Reduction { $0 + $1 })
    check(world, "scan in rank order", prefix == (0...rank).map(String.init).joined(), prefix)
    check(world, "scan array", try await world.scan([1, rank], .sum) == [rank + 1, rank * (rank + 1) / 2])

    // Sub-communicators: even and odd ranks, each ordered from the highest rank down.
    let half = try await world.split(color: rank % 2, key: -rank)
    if let half {
        let members = ranks.filter { $0 % 2 == rank % 2 }.reversed()
        check(world, "split size", half.size == members.count, "\(half.size)")
        check(world, "split rank", half.rank == Array(members).firstIndex(of: rank), "\(half.rank)")
        let parity = try await half.allreduce(rank, .sum)
        check(world, "split allreduce", parity == members.reduce(0, +), "\(parity)")
        // The same tag on both communicators: each receive sees its own communicator's message.
        let next = (half.rank + 1) % half.size, previous = (half.rank - 1 + half.size) % half.size
        try await half.send("sub", to: next, tag: 5)
        try await world.send("world", to: (rank + 1) % size, tag: 5)
        let fromWorld = try await world.recv(String.self, from: (rank - 1 + size) % size, tag: 5)
        let fromHalf = try await half.recv(String.self, from: previous, tag: 5)
        check(world, "split messages stay apart", fromWorld == "world" && fromHalf == "sub", "\(fromWorld) \(fromHalf)")
    } else {
        check(world, "split", false, "no communicator")
    }
    let none = try await world.split(color: rank == 0 ? nil : 1)
    check(world, "split undefined", rank == 0 ? none == nil : none?.size == size - 1)
}

func pointToPoint(_ world: Communicator) async throws {
    let rank = world.rank, size = world.size
    let next = (rank + 1) % size, previous = (rank - 1 + size) % size

    // A ring of Codable values, then tags out of order.
    try await world.send(Point(x: rank, label: "ring"), to: next, tag: 1)
    let got = try await world.recv(Point.self, from: previous, tag: 1)
    check(world, "ring", got == Point(x: previous, label: "ring"), "\(got)")
    try await world.send(2, to: next, tag: 2)
    try await world.send(3, to: next, tag: 3)
    let three = try await world.recv(Int.self, from: previous, tag: 3)
    let two = try await world.recv(Int.self, from: previous, tag: 2)
    check(world, "tags match, not order", three == 3 && two == 2)

    // Any source: rank 0 collects one message from each other rank.
    if rank == 0 {
        var sources = Set<Int>()
        for _ in 1..<size {
            let (value, status) = try await world.recvWithStatus(Int.self, tag: 9)
            if value == status.source * 10 { sources.insert(status.source) }
        }
        check(world, "any source", sources == Set(1..<size), "\(sources)")
    } else {
        try await world.send(rank * 10, to: 0, tag: 9)
    }

    // Non-blocking: post the receive first, then send.
    let request = try world.irecv([Int].self, from: previous, tag: 4)
    let sent = try world.isend([rank, rank], to: next, tag: 4)
    try await sent.wait()
    check(world, "isend/irecv", try await request.value == [previous, previous])

    let swapped = try await world.sendrecv("from \(rank)", to: next, sendTag: 6, from: previous, receiveTag: 6, as: String.self)
    check(world, "sendrecv", swapped == "from \(previous)", swapped)

    try await world.send(contentsOf: [Double](repeating: Double(rank), count: 1_000), to: next, tag: 7)
    let status = try await world.probe(from: previous, tag: 7)
    check(world, "probe", status.source == previous && status.count(of: Double.self) == 1_000, "\(status)")
    var buffer = [Double](repeating: -1, count: 1_000)
    try await world.recv(into: &buffer, from: previous, tag: 7)
    check(world, "buffer send/recv", buffer.allSatisfy { $0 == Double(previous) })
    try await world.send(contentsOf: [Int32(rank), 7], to: next, tag: 8)
    try await world.barrier()
    check(world, "iprobe", try world.iprobe(from: previous, tag: 8) != nil)
    check(world, "recv contents", try await world.recv(contentsOf: Int32.self, from: previous, tag: 8) == [Int32(previous), 7])

    // Buffers received straight from the link where the transport can (shared memory): the
    // matching order must be the same as through the mailbox.
    try await world.send(contentsOf: [Double](repeating: 11, count: 2), to: next, tag: 11)
    try await world.send(contentsOf: [Double](repeating: 12, count: 2), to: next, tag: 12)
    var pair = [Double](repeating: 0, count: 2)
    let twelve = try await world.recv(into: &pair, from: previous, tag: 12)
    check(world, "buffer out of tag order", pair == [12, 12] && twelve.tag == 12 && twelve.source == previous, "\(pair) \(twelve)")
    let eleven = try await world.recv(into: &pair, from: previous, tag: 11)
    check(world, "the earlier buffer after it", pair == [11, 11] && eleven.tag == 11, "\(pair) \(eleven)")
    for i in 0..<100 { try await world.send(contentsOf: [Double(i)], to: next, tag: 13 + i % 3) }
    var one = [0.0]
    var inOrder = true
    for i in 0..<100 {
        let status = try await world.recv(into: &one, from: previous)
        inOrder = inOrder && one == [Double(i)] && status.tag == 13 + i % 3 && status.byteCount == 8
    }
    check(world, "buffers of any tag, in sending order", inOrder)
    // A flood of small sends that nobody receives yet: more than a transport takes at once
    // (OpenMPI's shared memory runs out of fragments), so some leave only later, in order.
    let flood = 3_000
    for i in 0..<flood { try await world.send(contentsOf: [Double(i)], to: next, tag: 17) }
    var floodInOrder = true
    for i in 0..<flood {
        try await world.recv(into: &one, from: previous, tag: 17)
        floodInOrder = floodInOrder && one == [Double(i)]
    }
    check(world, "a flood of small sends, in order", floodInOrder)
    try await world.send(contentsOf: [Double](repeating: 5, count: 8), to: next, tag: 16)
    try await world.send(contentsOf: [Double(6)], to: next, tag: 16)
    do {
        try await world.recv(into: &one, from: previous, tag: 16)
        check(world, "a buffer too small", false, "no error")
    } catch let error as CommunicatorError {
        if case .malformedMessage(from: previous, _) = error { check(world, "a buffer too small", true) } else { check(world, "a buffer too small", false, "\(error)") }
    }
    try await world.recv(into: &one, from: previous, tag: 16)
    check(world, "the buffer after the one too large", one == [6], "\(one)")
    // The largest tag (over an MPI library, above what its tags carry by themselves), around
    // one with a small tag.
    try await world.send(contentsOf: [Double(31)], to: next, tag: Int(Int32.max))
    try await world.send(contentsOf: [Double(32)], to: next, tag: 32)
    try await world.send(contentsOf: [Double(33)], to: next, tag: Int(Int32.max))
    let largest = try await world.recv(into: &one, from: previous, tag: Int(Int32.max))
    let firstLargest = one
    try await world.recv(into: &one, from: previous, tag: Int(Int32.max))
    let secondLargest = one
    let small = try await world.recv(into: &one, from: previous)
    check(world, "the largest tag", largest.tag == Int(Int32.max) && firstLargest == [31] && secondLargest == [33] && small.tag == 32 && one == [32],
        "\(largest) \(firstLargest) \(secondLargest) \(small) \(one)")
    // Elements whose stride is not a power of two, and bytes that are not whole elements.
    try await world.send(contentsOf: [UInt8](repeating: 9, count: 12), to: next, tag: 19)
    try await world.send(contentsOf: [UInt8](1...9), to: next, tag: 19)
    var doubles = [Double](repeating: 0, count: 4)
    do {
        try await world.recv(into: &doubles, from: previous, tag: 19)
        check(world, "bytes that are not whole elements", false, "no error")
    } catch let error as CommunicatorError {
        if case .malformedMessage(from: previous, _) = error {
            check(world, "bytes that are not whole elements", true)
        } else {
            check(world, "bytes that are not whole elements", false, "\(error)")
        }
    }
    var colours = [Colour](repeating: Colour(red: 0, green: 0, blue: 0), count: 4)
    let triples = try await world.recv(into: &colours, from: previous, tag: 19)
    check(world, "elements of stride 3", triples.count(of: Colour.self) == 3
        && colours.prefix(3) == [Colour(red: 1, green: 2, blue: 3), Colour(red: 4, green: 5, blue: 6), Colour(red: 7, green: 8, blue: 9)],
        "\(triples) \(colours)")
    // A receive posted earlier takes the first matching message, though a later receive's
    // buffer could hold it too.
    let earlier = try world.irecv([Double].self, from: previous, tag: 17)
    try await world.send([Double(1), 2, 3], to: next, tag: 17)
    try await world.send(contentsOf: [UInt8](repeating: 4, count: 8), to: next, tag: 17)
    var bytes = [UInt8](repeating: 0, count: 64)
    let later = try await world.recv(into: &bytes, from: previous, tag: 17)
    check(world, "a posted receive first", try await earlier.value == [1, 2, 3] && later.byteCount == 8
        && bytes.prefix(8).allSatisfy { $0 == 4 }, "\(later)")
    // A message that waits in the mailbox (an iprobe took it off the link) comes before a later
    // one still on the link.
    try await world.send(contentsOf: [Double(21)], to: next, tag: 18)
    try await world.barrier()
    check(world, "iprobe before a buffer", try world.iprobe(from: previous, tag: 18) != nil)
    try await world.send(contentsOf: [Double(22)], to: next, tag: 18)
    try await world.recv(into: &one, from: previous, tag: 18)
    let first = one
    try await world.recv(into: &one, from: previous, tag: 18)
    check(world, "the mailbox's message first", first == [21] && one == [22], "\(first) \(one)")

    // Errors: a message of the wrong type, a rank that does not exist.
    try await world.send("not a number", to: next, tag: 10)
    do {
        _ = try await world.recv(Int.self, from: previous, tag: 10)
        check(world, "wrong type", false, "no error")
    } catch let error as CommunicatorError {
        if case .malformedMessage(from: previous, _) = error { check(world, "wrong type", true) } else { check(world, "wrong type", false, "\(error)") }
    }
    do {
        try await world.send(1, to: size + 3)
        check(world, "invalid rank", false, "no error")
    } catch let error as CommunicatorError {
        check(world, "invalid rank", error == .invalidRank(size + 3, size: size), "\(error)")
    }
}

func report(_ world: Communicator) async throws {
    let total = try await world.reduce(failures.withLock { $0 }, .sum, root: 0)
    if let total { say("checks: \(total) failed (messages: \(world.messageLinks))") }
}


/// Messages of awkward sizes both ways at once, some larger than a shared-memory ring: every
/// byte must arrive, in order. Codable values through `isend`, raw buffers through
/// `send(contentsOf:)` while the peer sends too.
func bulk(_ world: Communicator) async throws {
    let sizes = [1, 13, 1000, 4095, 65_537, (1 << 18) + 3, 17, 2]
    func pattern(_ size: Int, from rank: Int, index: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: size) { bytes, initialized in
            for i in 0..<size { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ index &* 7 &+ rank) }
            initialized = size
        }
    }
    let peer = world.rank ^ 1
    guard peer < world.size else { return }
    var sends: [SendRequest] = []
    for (index, size) in sizes.enumerated() {
        sends.append(try world.isend(pattern(size, from: world.rank, index: index), to: peer, tag: index))
    }
    for (index, size) in sizes.enumerated() {
        let got = try await world.recv([UInt8].self, from: peer, tag: index)
        check(world, "bulk \(size) bytes", got == pattern(size, from: peer, index: index), "\(got.count) bytes, or other bytes")
    }
    for send in sends { try await send.wait() }
    for (index, size) in [(1 << 20) + 3, (5 << 20) + 9, 4099].enumerated() {
        let mine = pattern(size, from: world.rank, index: index)
        async let sent: Void = world.send(contentsOf: mine, to: peer, tag: 100 + index)
        let got = try await world.recv(contentsOf: UInt8.self, from: peer, tag: 100 + index)
        try await sent
        check(world, "bulk raw \(size) bytes", got == pattern(size, from: peer, index: index), "\(got.count) bytes, or other bytes")
    }
    // Into a buffer, from one rank (the transports' direct path), around 16 KiB — where an MPI
    // library's links send a message as a head and the rest — there and back.
    // The receiving rank lets each message arrive whole (in the library, with no progress of
    // its own) before it receives: then it takes the direct path, in a debug build too.
    let directSizes = [16_371, 16_372, 16_373, 16_384, 40_000]
    let directPatterns = directSizes.enumerated().map { index, size in pattern(size, from: world.rank, index: index) }
    for (index, size) in directSizes.enumerated() {
        var buffer = [UInt8](repeating: 0, count: 40_000)
        try await world.barrier()
        if world.rank % 2 == 0 {
            try await world.send(contentsOf: directPatterns[index], to: peer, tag: 200)
            let status = try await world.recv(into: &buffer, from: peer, tag: 200)
            check(world, "bulk direct \(size) bytes", status.byteCount == size && Array(buffer[..<size]) == directPatterns[index],
                  "\(status.byteCount) bytes, or other bytes")
        } else {
            try await Task.sleep(for: .milliseconds(20))
            let status = try await world.recv(into: &buffer, from: peer, tag: 200)
            try await world.send(contentsOf: Array(buffer[..<status.byteCount]), to: peer, tag: 200)
            check(world, "bulk direct \(size) bytes", status.byteCount == size && Array(buffer[..<size]) == pattern(size, from: peer, index: index),
                  "\(status.byteCount) bytes, or other bytes")
        }
    }
}

do {
switch scenario {
case "bulk":
    try await Communicator.withWorld { world in
        try await bulk(world)
        try await report(world)
    }
case "collectives":
    try await Communicator.withWorld { world in
        try await collectives(world)
        try await pointToPoint(world)
        try await report(world)
    }
case "mainactor":
    // A program that talks from the main actor (top-level code), as scripts do: each operation
    // runs on the rank's loop and returns to the main actor, with the same results.
    let world = try await Communicator.world()
    let peer = (world.rank + 1) % world.size, from = (world.rank + world.size - 1) % world.size
    try await world.send("hello from \(world.rank)", to: peer, tag: 1)
    MainActor.assertIsolated()
    let greeting = try await world.recv(String.self, from: from, tag: 1)
    check(world, "main actor recv", greeting == "hello from \(from)", greeting)
    try await world.send(contentsOf: [Double(world.rank), 0.5], to: peer, tag: 2)
    var numbers = [Double](repeating: 0, count: 2)
    let status = try await world.recv(into: &numbers, from: from, tag: 2)
    check(world, "main actor recv into", numbers == [Double(from), 0.5] && status.byteCount == 16, "\(numbers)")
    MainActor.assertIsolated()
    try await world.barrier()
    let sum = try await world.allreduce(world.rank + 1, .sum)
    check(world, "main actor allreduce", sum == world.size * (world.size + 1) / 2, "\(sum)")
    var field = [Double](repeating: Double(world.rank), count: 100_000)
    try await world.allreduce(inPlace: &field, .sum)
    check(world, "main actor allreduce in place", field.allSatisfy { $0 == Double(world.size * (world.size - 1) / 2) }, "\(field[0])")
    let pending = try world.irecv(Int.self, from: from, tag: 3)
    try await world.send(world.rank * 10, to: peer, tag: 3)
    let tens = try await pending.value
    check(world, "main actor irecv", tens == from * 10, "\(tens)")
    MainActor.assertIsolated()
    try await report(world)
    await world.finalize()
case "kill":
    // Rank 1 dies (SIGKILL) in the middle of a run of allreduces.
    try await Communicator.withWorld { world in
        for round in 0..<100_000 {
            if world.rank == 1, round == 200 { kill(getpid(), SIGKILL) }
            do {
                _ = try await world.allreduce(round, .sum)
            } catch {
                say("rank \(world.rank) error after \(round) rounds: \(error)")
                throw error
            }
        }
    }
case "where", "spin":
    // Every rank says which process it is and whose child (the launcher's, or a node's); then
    // `where` checks one allreduce, and `spin` runs allreduces for up to 60 s (a test kills a
    // node meanwhile).
    try await Communicator.withWorld { world in
        say("rank \(world.rank) of \(world.size) pid \(getpid()) parent \(getppid())")
        let sum = try await world.allreduce(world.rank, .sum)
        say("rank \(world.rank) sum of ranks: \(sum)")
        guard scenario == "spin" else { return }
        let began = ContinuousClock.now
        var round = 0
        while began.duration(to: .now) < .seconds(60) {
            do {
                _ = try await world.allreduce(round, .sum)
            } catch {
                say("rank \(world.rank) error after \(round) rounds: \(error)")
                throw error
            }
            round += 1
            if round % 100 == 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
    }
case "chatter":
    // Each rank prints 100,000 numbered lines (about 2 MB) as fast as it can, then meets the
    // others: its output must arrive whole and in order, however it travels.
    try await Communicator.withWorld { world in
        var text = ""
        for line in 0..<100_000 {
            text += "rank \(world.rank) line \(line)\n"
            if text.utf8.count > 60_000 {
                print(text, terminator: "")
                text = ""
            }
        }
        print(text, terminator: "")
        fflush(nil)
        try await world.barrier()
    }
case "orphan":
    // Each rank leaves two children behind that hold its output open (`sleep 30`), then
    // finishes: one in its process group (a shell's background job), one in a group of its own
    // (Foundation's Process makes one). Whoever reads the rank's output must wait for neither.
    try await Communicator.withWorld { world in
        fflush(nil)
        _ = system("sleep 30 & echo \"left child $!\"")
        let stray = Process()
        stray.executableURL = URL(fileURLWithPath: "/bin/sleep")
        stray.arguments = ["30"]
        try stray.run()
        say("left stray \(stray.processIdentifier)")
        try await world.barrier()
    }
case "throw":
    // Rank 2 throws out of its program; the others wait in a barrier.
    try await Communicator.withWorld { world in
        try await world.barrier()
        if world.rank == 2 { throw Refusal() }
        do {
            try await world.barrier()
        } catch {
            say("rank \(world.rank) error: \(error)")
            throw error
        }
    }
case "secret":
    // Another program, with the wrong secret, tries the launcher's port; the job goes on.
    try await Communicator.withWorld { world in
        if world.rank == 0 {
            let launcher = try Endpoint(ProcessInfo.processInfo.environment["FLEET_MPI_LAUNCHER"] ?? "")
            let configuration = WireConfiguration(credentials: .secret(try Secret(Array("not the job's secret".utf8))))
            do {
                try await WireClient.withConnection(to: launcher, configuration: configuration) { @Sendable _ in }
                say("intruder: accepted")
            } catch let error as HandshakeError {
                say("intruder: rejected: \(error)")
            }
        }
        say("rank \(world.rank) sum after intruder: \(try await world.allreduce(1, .sum))")
    }
case "timeout":
    // Under `fleet launch --timeout 0.5`: a receive nobody sends to times out; one from a rank
    // that has finished fails at once; the rank goes on.
    try await Communicator.withWorld { world in
        if world.rank == 0 {
            do {
                _ = try await world.recv(Int.self, tag: 99)
                say("rank 0 timeout: no error")
            } catch {
                say("rank 0 timeout: \(error)")
            }
            do {
                _ = try await world.recv(Int.self, from: 1, tag: 99)
                say("rank 0 from finished rank: no error")
            } catch {
                say("rank 0 from finished rank: \(error)")
            }
            try await world.send("after", to: 0, tag: 1)
            say("rank 0 after timeout: \(try await world.recv(String.self, from: 0, tag: 1))")
        } else {
            // Finalizing from the rank's own loop, before withWorld does it again.
            await world.finalize()
            say("rank \(world.rank) finalized")
        }
    }
case "sendbarrier":
    // A message larger than the free room of a ring (run with small rings) is still being
    // written when its sender enters collectives: they must keep the rings moving (on an MPI
    // library, a barrier that blocked in the library would not), or the receiver, which takes
    // the message before it joins them, waits for the rest forever.
    try await Communicator.withWorld { world in
        let size = 1 << 20
        let expected = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        if world.rank == 0 {
            let sent = try world.isend(expected, to: 1, tag: 9)
            try await world.barrier()
            let total = try await world.allreduce(1.0, .sum)
            try await sent.wait()
            check(world, "send then barrier", total == Double(world.size))
        } else if world.rank == 1 {
            let received = try await world.recv([UInt8].self, from: 0, tag: 9)
            try await world.barrier()
            let total = try await world.allreduce(1.0, .sum)
            check(world, "send then barrier", received == expected && total == Double(world.size))
        } else {
            try await world.barrier()
            _ = try await world.allreduce(1.0, .sum)
        }
        try await report(world)
    }
case "finished":
    // A rank finalizes while the other, having let its goodbye arrive, receives numbers from it
    // (straight from the link where the transport can): that fails at once, naming the rank.
    try await Communicator.withWorld { world in
        if world.rank == 0 {
            try await Task.sleep(for: .milliseconds(300))
            var one = [0.0]
            do {
                try await world.recv(into: &one, from: 1, tag: 5)
                say("rank 0 numbers from finished rank: no error")
            } catch {
                say("rank 0 numbers from finished rank: \(error)")
            }
        } else {
            await world.finalize()
            say("rank \(world.rank) finalized")
        }
    }
case "nofinalize":
    // A rank that ends without finalizing leaves the others waiting: the launcher says so.
    let world = try await Communicator.world()
    if world.rank == 1 { exit(0) }
    do {
        try await world.barrier()
    } catch {
        say("rank \(world.rank) error: \(error)")
    }
    exit(3)
case "farm":
    // Rank 0 farms jobs out to the other ranks (or, alone, to its own threads).
    try await Communicator.withWorld { world in
        let farmed = try await world.withJobServer { server in
            let jobs = (1...40).map { server.submit(FarmSquare.self, $0) }
            var results: [[Int]] = []
            for job in jobs { results.append(try await job.value) }
            do {
                _ = try await server.submit(FarmRefusal.self, 7).value
                say("farm FAIL: the refusal did not throw")
            } catch {
                say("farm error: \(error)")
            }
            return (results, server.stats)
        }
        if let (results, stats) = farmed {
            say("farm squares: \(results.map { $0[0] }.reduce(0, +))")
            say("farm jobs on rank 0's process: \(results.filter { $0[1] == Int(getpid()) }.count)")
            for node in stats.nodes { say("farm node \(node.name): \(node.jobs) jobs") }
        }
        say("rank \(world.rank) farm done: \(try await world.allreduce(1, .sum)) ranks")
    }
case "farmdeath":
    // A worker rank dies running a job: that job fails with a typed error, the others finish
    // on the ranks that are left.
    try await Communicator.withWorld { world in
        let farmed = try await world.withJobServer { server in
            let death = server.submit(FarmDeath.self, 1)
            let jobs = (1...20).map { server.submit(FarmSquare.self, $0) }
            do {
                _ = try await death.value
                say("farm FAIL: the dead worker's job succeeded")
            } catch {
                say("farm crashed: \(error)")
            }
            var sum = 0
            for job in jobs { sum += try await job.value[0] }
            say("farm squares after the death: \(sum)")
            return sum
        }
        if farmed != nil { say("farm FAIL: the farm ended as if no rank had died") }
    }
default:
    say("unknown scenario \(scenario)")
    exit(2)
}
} catch {
    // Exit rather than crash: the status says it failed, and stdout is flushed.
    say("rank \(ProcessInfo.processInfo.environment["FLEET_MPI_RANK"] ?? "?") ends with: \(error)")
    exit(1)
}

/// An element of 3 bytes: a stride that is not a power of two.
struct Colour: BitwiseCopyable, Sendable, Equatable {
    var red, green, blue: UInt8
}
