import FleetWire
import NIOCore

/// Collectives: every rank of the communicator calls the same ones, in the same order. They use
/// the algorithms MPI libraries use — dissemination barrier, binomial trees for broadcast,
/// scatter, gather and reduce, recursive doubling for small allreduces, a ring
/// (reduce-scatter, then allgather) for large commutative array allreduces, pairwise exchange
/// for alltoall — so no rank relays everything. Each costs O(log size) message latencies,
/// except the ring steps of allgather and large allreduces (size - 1 each, bandwidth-optimal).
extension Communicator {
    /// Waits until every rank has called it (`MPI_Barrier`).
    @inlinable
    nonisolated(nonsending) public func barrier() async throws {
        // Inlined into the caller, so that the common case on an MPI library is a plain call.
        if try _barrierNow() { return }
        try await _barrier()
    }

    /// Under `withWorld` on an MPI library whose messages travel through it (between hosts):
    /// the library's barrier, with nothing around it, and `true`; else `false`.
    @usableFromInline
    func _barrierNow() throws -> Bool {
        try checkOpen()
        guard isLibraryWorld, world.isOnLoop else { return false }
        try LibraryLinks.barrier()
        return true
    }

    @usableFromInline
    nonisolated(nonsending) func _barrier() async throws {
        try checkOpen()
        if isLibraryWorld, try await libraryBarrier() { return }
        let tag = nextCollectiveTag()
        // Under `withWorld`, straight on: no closure to call, no executor to come back to.
        if world.isOnLoop { return try await dissemination(tag: tag) }
        try await onLoop { try await dissemination(tag: tag) }
    }

    /// The barrier of ``barrier()``, on the loop: in each round a rank sends an empty message
    /// (a header, nothing to code) `distance` ranks ahead and waits for one from as far behind.
    nonisolated(nonsending) private func dissemination(tag: Int32) async throws {
        var distance = 1
        while distance < size {
            try await collectiveSignal(to: (rank + distance) % size, tag: tag)
            try await collectiveAwaitSignal(from: (rank - distance + size) % size, tag: tag, operation: "barrier")
            distance <<= 1
        }
    }

    /// Gives every rank the value `root` has (`MPI_Bcast`; mpi4py's `data = comm.bcast(data, root=0)`).
    ///
    /// - Parameter value: the value, on `root`; the other ranks may pass `nil`.
    nonisolated(nonsending) public func bcast<T: Codable & Sendable>(_ value: T?, root: Int = 0) async throws -> T {
        try checkOpen()
        _ = try worldRank(of: root)
        let tag = nextCollectiveTag()
        return try await onLoop {
            let relative = (rank - root + size) % size
            var data: ByteBuffer
            var mask = 1
            if rank == root {
                guard let value else { throw CommunicatorError.invalidArgument("bcast needs a value on its root, rank \(root)") }
                data = try collectiveMessage(value, tag: tag)
                while mask < size { mask <<= 1 }
            } else {
                while relative & mask == 0 { mask <<= 1 }
                data = try await collectiveReceive(from: (relative - mask + root) % size, tag: tag).data
                data = resend(data, tag: tag)
            }
            mask >>= 1
            while mask > 0 {
                if relative + mask < size {
                    try await transmit(data, to: (relative + mask + root) % size)
                }
                mask >>= 1
            }
            if let value, rank == root { return value }
            return try decode(T.self, RankMessage(context: collectiveContext, source: members[root], tag: tag, data: body(of: data)))
        }
    }

    /// Gives rank `i` the element `values[i]` of `root` (`MPI_Scatter`).
    ///
    /// - Parameter values: `size` values, on `root`; the other ranks may pass `nil`.
    nonisolated(nonsending) public func scatter<T: Codable & Sendable>(_ values: [T]?, root: Int = 0) async throws -> T {
        try checkOpen()
        _ = try worldRank(of: root)
        let tag = nextCollectiveTag()
        return try await onLoop {
            let relative = (rank - root + size) % size
            var block: [T]
            var mask = 1
            if rank == root {
                guard let values, values.count == size else {
                    throw CommunicatorError.invalidArgument("scatter needs \(size) values on its root, rank \(root); it has \(values?.count ?? 0)")
                }
                block = (0..<size).map { values[($0 + root) % size] }   // in relative order
                while mask < size { mask <<= 1 }
            } else {
                while relative & mask == 0 { mask <<= 1 }
                block = try await collectiveRecv([T].self, from: (relative - mask + root) % size, tag: tag)
            }
            mask >>= 1
            while mask > 0 {
                if relative + mask < size, block.count > mask {
                    try await collectiveSend(Array(block[mask...]), to: (relative + mask + root) % size, tag: tag)
                    block.removeSubrange(mask...)
                }
                mask >>= 1
            }
            guard let mine = block.first else { throw CommunicatorError.invalidArgument("scatter received nothing for rank \(rank)") }
            return mine
        }
    }

    /// Collects every rank's value on `root`, in rank order (`MPI_Gather`).
    ///
    /// - Returns: the `size` values on `root`; `nil` on the other ranks.
    nonisolated(nonsending) public func gather<T: Codable & Sendable>(_ value: T, root: Int = 0) async throws -> [T]? {
        try checkOpen()
        _ = try worldRank(of: root)
        let tag = nextCollectiveTag()
        return try await onLoop {
            let relative = (rank - root + size) % size
            var block = [value]
            var mask = 1
            while mask < size {
                if relative & mask != 0 {
                    try await collectiveSend(block, to: (relative - mask + root) % size, tag: tag)
                    return nil
                }
                if relative + mask < size {
                    block += try await collectiveRecv([T].self, from: (relative + mask + root) % size, tag: tag)
                }
                mask <<= 1
            }
            // `block` is in relative order: rank r's value is at (r - root) mod size.
            return (0..<size).map { block[($0 - root + size) % size] }
        }
    }

    /// Gives every rank every rank's value, in rank order (`MPI_Allgather`), around a ring.
    nonisolated(nonsending) public func allgather<T: Codable & Sendable>(_ value: T) async throws -> [T] {
        try checkOpen()
        let tag = nextCollectiveTag()
        return try await onLoop {
            var values = [T?](repeating: nil, count: size)
            values[rank] = value
            let right = (rank + 1) % size, left = (rank - 1 + size) % size
            for step in 0..<(size - 1) {
                let sending = (rank - step + size) % size
                values[(rank - step - 1 + size) % size] = try await exchange(values[sending]!, to: right, from: left, tag: tag)
            }
            return values.map { $0! }
        }
    }

    /// Sends `values[i]` to rank `i` and returns what each rank sent this one, by rank
    /// (`MPI_Alltoall`), by pairwise exchange.
    ///
    /// - Parameter values: exactly `size` values.
    nonisolated(nonsending) public func alltoall<T: Codable & Sendable>(_ values: [T]) async throws -> [T] {
        try checkOpen()
        guard values.count == size else {
            throw CommunicatorError.invalidArgument("alltoall needs \(size) values, one per rank; it has \(values.count)")
        }
        let tag = nextCollectiveTag()
        return try await onLoop {
            var received = [T?](repeating: nil, count: size)
            received[rank] = values[rank]
            for step in 1..<max(size, 1) {
                let destination = (rank + step) % size, source = (rank - step + size) % size
                received[source] = try await exchange(values[destination], to: destination, from: source, tag: tag)
            }
            return received.map { $0! }
        }
    }

    /// Combines every rank's value with `operation` onto `root` (`MPI_Reduce`), in rank order.
    ///
    /// - Returns: `value₀ ⊕ value₁ ⊕ … ⊕ valueₛᵢᵤₑ₋₁` on `root`; `nil` on the other ranks.
    nonisolated(nonsending) public func reduce<T: Codable & Sendable>(_ value: T, _ operation: Reduction<T>, root: Int = 0) async throws -> T? {
        try await reduce(value, root: root, combine: operation.combine)
    }

    /// Combines every rank's array element by element onto `root` (`MPI_Reduce` of a buffer).
    nonisolated(nonsending) public func reduce<T: Codable & Sendable>(_ values: [T], _ operation: Reduction<T>, root: Int = 0) async throws -> [T]? {
        try await reduce(values, root: root, combine: Self.elementwise(operation))
    }

    /// Combines every rank's value with `operation` and gives every rank the result
    /// (`MPI_Allreduce`): pyMPI's `mpi.allreduce(mypi, mpi.SUM)`. Every rank gets the same
    /// result, bit for bit.
    ///
    /// ```swift
    /// let pi = 4 * (try await world.allreduce(inside, .sum)) / Double(samples * world.size)
    /// ```
    @_specialize(exported: true, where T == Double)
    @_specialize(exported: true, where T == Int)
    nonisolated(nonsending) public func allreduce<T: Codable & Sendable>(_ value: T, _ operation: Reduction<T>) async throws -> T {
        var result = value
        if try libraryAllreduceOnLoop(&result, operation) { return result }
        if isLibraryWorld, try await libraryAllreduce(&result, operation) { return result }
        return try await allreduce(value, combine: operation.combine)
    }

    /// Combines every rank's array element by element and gives every rank the result.
    ///
    /// - Throws: ``CommunicatorError/invalidArgument(_:)`` when the ranks' arrays differ in
    ///   length.
    nonisolated(nonsending) public func allreduce<T: Codable & Sendable>(_ values: [T], _ operation: Reduction<T>) async throws -> [T] {
        if isLibraryWorld, let result = try await libraryAllreduce(values, operation) { return result }
        return try await allreduce(values, combine: Self.elementwise(operation))
    }

    /// Combines every rank's numeric array element by element and gives every rank the result;
    /// large arrays with a commutative operation go around a ring (reduce-scatter, then
    /// allgather), moving `2 (size - 1) / size` of the array per rank, as raw bytes.
    nonisolated(nonsending) public func allreduce<T: Codable & Sendable & BitwiseCopyable>(_ values: [T], _ operation: Reduction<T>) async throws -> [T] {
        if isLibraryWorld, let result = try await libraryAllreduce(values, operation) { return result }
        var result = values
        if try await ringAllreduce(in: &result, operation) { return result }
        return try await allreduce(values, combine: Self.elementwise(operation))
    }

    /// Combines every rank's numeric array element by element into `values` itself, on every
    /// rank (MPI's `MPI_IN_PLACE`): no result array is made. Large arrays with a commutative
    /// operation go around the ring in `values`' own memory — over shared memory straight from
    /// and into the rings — which saves a copy of the whole array and its allocation. On an MPI
    /// library (trait `MPI`) whose messages travel through it (between hosts, or with
    /// `FLEET_MPI_NODE_RINGS=0`), numbers with a built-in operation go to `MPI_Allreduce` with
    /// `MPI_IN_PLACE`, in `values` itself.
    ///
    /// ```swift
    /// var field = [Double](repeating: 0, count: 1 << 20)
    /// try await world.allreduce(inPlace: &field, .sum)
    /// ```
    ///
    /// - Throws: what the allreduce that returns a new array throws; after an error, `values` may
    ///   hold partial results.
    nonisolated(nonsending) public func allreduce<T: Codable & Sendable & BitwiseCopyable>(inPlace values: inout [T], _ operation: Reduction<T>) async throws {
        if isLibraryWorld, try await libraryAllreduce(inPlace: &values, operation) { return }
        if try await ringAllreduce(in: &values, operation) { return }
        values = try await allreduce(values, operation)
    }

    /// Combines every rank's numeric array element by element into `result`, an array of the
    /// same length made beforehand (`MPI_Allreduce` with a send and a receive buffer; mpi4py's
    /// `comm.Allreduce(sendbuf, recvbuf)`): `values` stays as it is, and reusing `result` round
    /// after round makes no array. On an MPI library (trait `MPI`) whose messages travel through
    /// it (between hosts, or with `FLEET_MPI_NODE_RINGS=0`) the library reads `values` and
    /// writes `result`. Elsewhere large arrays with a commutative operation go around the
    /// ring from `values` into `result`'s memory; others are copied into `result` and reduced
    /// there (``allreduce(inPlace:_:)``).
    ///
    /// ```swift
    /// var total = [Double](repeating: 0, count: mine.count)
    /// for _ in 0..<rounds { try await world.allreduce(mine, into: &total, .sum) }
    /// ```
    ///
    /// - Throws: ``CommunicatorError/invalidArgument(_:)`` when `result` is not as long as
    ///   `values`; what ``allreduce(inPlace:_:)`` throws.
    nonisolated(nonsending) public func allreduce<T: Codable & Sendable & BitwiseCopyable>(
        _ values: [T], into result: inout [T], _ operation: Reduction<T>
    ) async throws {
        guard result.count == values.count else {
            throw CommunicatorError.invalidArgument("the result holds \(result.count) elements, not \(values.count) like the values")
        }
        if isLibraryWorld, try await libraryAllreduce(values, into: &result, operation) { return }
        // Around the ring from `values` into `result`'s own memory: no copy of the values.
        if try await ringAllreduce(in: &result, operation, from: values) { return }
        result.withUnsafeMutableBytes { target in
            values.withUnsafeBytes { source in
                if let base = source.baseAddress { target.baseAddress!.copyMemory(from: base, byteCount: source.count) }
            }
        }
        try await allreduce(inPlace: &result, operation)
    }

    /// Arrays at least this large (in bytes) go around the ring.
    static var ringThreshold: Int { 64 << 10 }

    /// Reduces `values` around the ring in their own memory (from `source`'s values instead,
    /// when given), when the array is large enough and the operation commutative; else returns
    /// `false`, with `values` untouched.
    nonisolated(nonsending) private func ringAllreduce<T: Codable & Sendable & BitwiseCopyable>(
        in values: inout [T], _ operation: Reduction<T>, from source: [T]? = nil
    ) async throws -> Bool {
        let bytes = values.count * MemoryLayout<T>.stride
        guard operation.isCommutative, size > 1, values.count >= size, bytes >= Self.ringThreshold else { return false }
        try checkOpen()
        let tag = nextCollectiveTag()
        // The array moves into the box and back: no copy of its elements either way.
        let data = ArrayBox<T>([])
        swap(&data.elements, &values)
        defer { swap(&data.elements, &values) }
        try await onLoop { try await ringAllreduce(data, operation, tag: tag, from: source) }
        return true
    }

    /// The inclusive prefix: rank `r` gets `value₀ ⊕ … ⊕ valueᵣ` (`MPI_Scan`).
    nonisolated(nonsending) public func scan<T: Codable & Sendable>(_ value: T, _ operation: Reduction<T>) async throws -> T {
        try await scan(value, combine: operation.combine)
    }

    /// The inclusive prefix of arrays, element by element.
    nonisolated(nonsending) public func scan<T: Codable & Sendable>(_ values: [T], _ operation: Reduction<T>) async throws -> [T] {
        try await scan(values, combine: Self.elementwise(operation))
    }

    // MARK: The algorithms

    /// Binomial tree onto rank 0 (lower blocks on the left), then to `root`.
    nonisolated(nonsending) private func reduce<T: Codable & Sendable>(_ value: T, root: Int, combine: @Sendable (T, T) throws -> T) async throws -> T? {
        try checkOpen()
        _ = try worldRank(of: root)
        let tag = nextCollectiveTag()
        return try await onLoop {
            var accumulated = value
            var mask = 1
            while mask < size {
                if rank & mask != 0 {
                    try await collectiveSend(accumulated, to: rank - mask, tag: tag)
                    break
                }
                if rank + mask < size {
                    accumulated = try combine(accumulated, try await collectiveRecv(T.self, from: rank + mask, tag: tag))
                }
                mask <<= 1
            }
            if root == 0 { return rank == 0 ? accumulated : nil }
            if rank == 0 { try await collectiveSend(accumulated, to: root, tag: tag) }
            return rank == root ? try await collectiveRecv(T.self, from: 0, tag: tag) : nil
        }
    }

    /// Recursive doubling; with a size that is no power of two, the first `2 × extra` ranks
    /// pair up first and the odd ones stand for both.
    nonisolated(nonsending) private func allreduce<T: Codable & Sendable>(_ value: T, combine: @Sendable (T, T) throws -> T) async throws -> T {
        try checkOpen()
        let tag = nextCollectiveTag()
        // Under `withWorld`, straight on: no closure to call, no executor to come back to.
        if world.isOnLoop { return try await recursiveDoubling(value, combine: combine, tag: tag) }
        return try await onLoop { try await recursiveDoubling(value, combine: combine, tag: tag) }
    }

    /// The allreduce of ``allreduce(_:combine:)``, on the loop: recursive doubling among the
    /// largest power of two of ranks, the others folded in before and served after.
    nonisolated(nonsending) private func recursiveDoubling<T: Codable & Sendable>(
        _ value: T, combine: @Sendable (T, T) throws -> T, tag: Int32
    ) async throws -> T {
        var power = 1
        while power * 2 <= size { power *= 2 }
        let extra = size - power
        var accumulated = value
        let stand: Int?   // This rank's number among the `power` that double.
        if rank < 2 * extra {
            if rank % 2 == 0 {
                try await collectiveSend(accumulated, to: rank + 1, tag: tag)
                stand = nil
            } else {
                accumulated = try combine(try await collectiveRecv(T.self, from: rank - 1, tag: tag), accumulated)
                stand = rank / 2
            }
        } else {
            stand = rank - extra
        }
        if let stand {
            var mask = 1
            while mask < power {
                let partnerStand = stand ^ mask
                let partner = partnerStand < extra ? partnerStand * 2 + 1 : partnerStand + extra
                let other = try await exchange(accumulated, to: partner, from: partner, tag: tag)
                accumulated = partnerStand < stand ? try combine(other, accumulated) : try combine(accumulated, other)
                mask <<= 1
            }
        }
        if rank < 2 * extra {
            if rank % 2 == 1 {
                try await collectiveSend(accumulated, to: rank - 1, tag: tag)
            } else {
                accumulated = try await collectiveRecv(T.self, from: rank + 1, tag: tag)
            }
        }
        return accumulated
    }

    /// Hillis–Steele: after the step at distance `d`, rank `r` holds `value[r-2d+1] ⊕ … ⊕ value[r]`.
    nonisolated(nonsending) private func scan<T: Codable & Sendable>(_ value: T, combine: @Sendable (T, T) throws -> T) async throws -> T {
        try checkOpen()
        let tag = nextCollectiveTag()
        return try await onLoop {
            var partial = value
            var distance = 1
            while distance < size {
                let lower = rank - distance >= 0
                    ? world.mailbox.post(MessagePattern(context: collectiveContext, source: members[rank - distance], tag: tag))
                    : nil
                if rank + distance < size { try await collectiveSend(partial, to: rank + distance, tag: tag) }
                if let lower { partial = try combine(try decode(T.self, try await wait(for: lower, operation: "scan")), partial) }
                distance <<= 1
            }
            return partial
        }
    }

    /// Reduce-scatter then allgather around the ring, chunks as raw bytes. Over shared memory
    /// each incoming chunk is combined into (or copied to) the result straight from the ring,
    /// through its receive's sink; elsewhere it arrives as a message and is applied from there.
    nonisolated(nonsending) private func ringAllreduce<T: Codable & Sendable & BitwiseCopyable>(
        _ data: ArrayBox<T>, _ operation: Reduction<T>, tag: Int32, from source: [T]? = nil
    ) async throws {
        let count = data.elements.count
        func bounds(_ chunk: Int) -> Range<Int> { (chunk * count / size)..<((chunk + 1) * count / size) }
        let right = (rank + 1) % size, left = (rank - 1 + size) % size
        let stride = MemoryLayout<T>.stride
        for phase in 0..<2 {
            for step in 0..<(size - 1) {
                let sending = bounds((rank - step + phase + size) % size)
                let receiving = bounds((rank - step - 1 + phase + size) % size)
                let sink = ArrayChunkSink(data, range: receiving, combining: phase == 0 ? operation : nil, source: phase == 0 ? source : nil)
                let incoming = world.mailbox.post(
                    MessagePattern(context: collectiveContext, source: members[left], tag: tag), sink: sink)
                func send(from raw: UnsafeRawBufferPointer) throws -> EventLoopFuture<Void>? {
                    try world.write(
                        context: collectiveContext, tag: tag,
                        body: UnsafeRawBufferPointer(rebasing: raw[(sending.lowerBound * stride)..<(sending.upperBound * stride)]),
                        to: members[right])
                }
                // The first chunk sent is this rank's own values: from `source`, when given.
                let written = if phase == 0, step == 0, let source {
                    try source.withUnsafeBytes(send(from:))
                } else {
                    try data.elements.withUnsafeBytes(send(from:))
                }
                let message = try await wait(for: incoming, operation: "allreduce")
                if !sink.isFull {
                    // It came as a message (TCP, or it arrived before the receive was posted).
                    guard message.data.readableBytes == sink.length else {
                        throw CommunicatorError.invalidArgument("allreduce arrays differ in length between ranks")
                    }
                    message.data.withUnsafeReadableBytes { sink.take($0) }
                }
                if let written { try await world.completion(of: written, to: members[right]) }
            }
        }
    }

    /// `operation` applied element by element, as a combine of whole arrays.
    private static func elementwise<T: Sendable>(_ operation: Reduction<T>) -> @Sendable ([T], [T]) throws -> [T] {
        { lower, higher in
            guard lower.count == higher.count else {
                throw CommunicatorError.invalidArgument("the ranks' arrays differ in length (\(lower.count) and \(higher.count))")
            }
            var result = higher
            result.withUnsafeMutableBufferPointer { target in
                lower.withUnsafeBufferPointer { operation.combineElementsFromLeft(target, $0) }
            }
            return result
        }
    }

    // MARK: Messages on the collective context

    func collectiveMessage<T: Encodable>(_ value: T, tag: Int32) throws -> ByteBuffer {
        try encode(value, context: collectiveContext, tag: tag)
    }

    /// Sends `value`, encoded; a `Double` or `Float` goes as its bytes instead, straight to the
    /// link with no buffer made (``RawScalar``).
    @inline(__always)
    nonisolated(nonsending) func collectiveSend<T: Encodable>(_ value: T, to rank: Int, tag: Int32) async throws {
        guard RawScalar.isRaw(T.self) else { return try await transmit(try collectiveMessage(value, tag: tag), to: rank) }
        let target = try worldRank(of: rank)
        var value = value
        let written = try withUnsafeBytes(of: &value) { body in
            try world.write(context: collectiveContext, tag: tag, body: body, to: target)
        }
        if let written { try await world.settle(written, size: RankMessageHeader.size + MemoryLayout<T>.size, to: target) }
    }

    /// Sends an empty message (a barrier's signal) straight to the link.
    @inline(__always)
    nonisolated(nonsending) func collectiveSignal(to rank: Int, tag: Int32) async throws {
        let target = try worldRank(of: rank)
        let written = try world.write(context: collectiveContext, tag: tag, body: UnsafeRawBufferPointer(start: nil, count: 0), to: target)
        if let written { try await world.settle(written, size: RankMessageHeader.size, to: target) }
    }

    /// Waits for an empty message (a barrier's signal); from the link directly when it can.
    @inline(__always)
    nonisolated(nonsending) func collectiveAwaitSignal(from rank: Int, tag: Int32, operation: String) async throws {
        if world.receiveDirectly(from: try worldRank(of: rank), context: collectiveContext, tag: tag, take: { _ in true }) != nil { return }
        _ = try await receive(context: collectiveContext, from: rank, tag: tag, operation: operation, direct: false)
    }

    nonisolated(nonsending) func collectiveReceive(from rank: Int, tag: Int32) async throws -> RankMessage {
        try await receive(context: collectiveContext, from: rank, tag: tag, operation: "collective")
    }

    /// Receives a `T`; a `Double` or `Float` from the link's bytes directly when it can.
    @inline(__always)
    nonisolated(nonsending) func collectiveRecv<T: Decodable>(_ type: T.Type, from rank: Int, tag: Int32) async throws -> T {
        if RawScalar.isRaw(T.self) {
            var value: T?
            if world.receiveDirectly(from: try worldRank(of: rank), context: collectiveContext, tag: tag, take: { body in
                value = RawScalar.read(T.self, from: body)
                return value != nil
            }) != nil, let value {
                return value
            }
            return try decode(type, try await receive(context: collectiveContext, from: rank, tag: tag, operation: "collective", direct: false))
        }
        return try decode(type, try await collectiveReceive(from: rank, tag: tag))
    }

    /// Sends `value` to `destination`, then receives a `T` from `source`. Sending first never
    /// blocks the exchange: a write that waits for room (or for the socket) drives the links,
    /// which take what arrives meanwhile.
    @inline(__always)
    nonisolated(nonsending) func exchange<T: Codable>(_ value: T, to destination: Int, from source: Int, tag: Int32) async throws -> T {
        try await collectiveSend(value, to: destination, tag: tag)
        return try await collectiveRecv(T.self, from: source, tag: tag)
    }

    /// A received message's data as a message to send on (the broadcast tree forwards bytes
    /// without decoding them).
    private func resend(_ data: ByteBuffer, tag: Int32) -> ByteBuffer {
        var buffer = world.messageBuffer(context: collectiveContext, tag: tag, capacity: data.readableBytes)
        buffer.writeImmutableBuffer(data)
        return buffer
    }

    /// The data of a message built by ``World/messageBuffer(context:tag:capacity:)``.
    private func body(of message: ByteBuffer) -> ByteBuffer {
        message.getSlice(at: message.readerIndex + RankMessageHeader.size, length: message.readableBytes - RankMessageHeader.size) ?? ByteBuffer()
    }
}

/// The numbers whose binary encoding (``BinaryEncoder``) is their little-endian bytes: `Double`
/// and `Float`. Collectives of one such value send those bytes without an encoder and read them
/// without a decoder; what arrives is the same either way, so a rank that decodes it (after a
/// wait that took the usual way) reads the same value.
enum RawScalar {
    /// Whether `T` is one of them. Compares metatypes: a few instructions.
    static func isRaw<T>(_ type: T.Type) -> Bool {
        T.self == Double.self || T.self == Float.self
    }

    /// The value in `bytes`, when they are one `T` (`Double` or `Float`).
    static func read<T>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) -> T? {
        if T.self == Double.self, bytes.count == 8 {
            return unsafeBitCast(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))), to: T.self)
        }
        if T.self == Float.self, bytes.count == 4 {
            return unsafeBitCast(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self))), to: T.self)
        }
        return nil
    }
}
