import FleetWire
import NIOCore
import Synchronization

extension Communicator {
    /// Sends `value` to `destination` (mpi4py's `comm.send`): any `Encodable` value, in Fleet's
    /// binary format. Returns once the message is on its way; messages between two ranks
    /// arrive in the order sent.
    ///
    /// ```swift
    /// if world.rank == 0 { try await world.send(["alpha": 1], to: 1, tag: 7) }
    /// ```
    ///
    /// - Throws: ``CommunicatorError/invalidRank(_:size:)``, ``CommunicatorError/invalidTag(_:)``,
    ///   ``CommunicatorError/rankFailed(rank:reason:)`` once the job has failed.
    nonisolated(nonsending) public func send<T: Encodable & Sendable>(_ value: T, to destination: Int, tag: Int = 0) async throws {
        let tag = try userTag(tag)
        try checkOpen()
        try await onLoop {
            try await transmit(try encode(value, context: context, tag: tag), to: destination)
        }
    }

    /// Receives a `T` (mpi4py's `comm.recv`) from `source` (any rank when `nil`) with `tag`
    /// (any tag when `nil`).
    ///
    /// ```swift
    /// let table = try await world.recv([String: Int].self, from: 0, tag: 7)
    /// ```
    ///
    /// - Throws: ``CommunicatorError/malformedMessage(from:_:)`` when the message is not a `T`;
    ///   ``CommunicatorError/rankFailed(rank:reason:)``; ``CommunicatorError/rankFinished(rank:)``
    ///   when `source` has finalized; ``CommunicatorError/timedOut(operation:after:)``;
    ///   `CancellationError`.
    nonisolated(nonsending) public func recv<T: Decodable & Sendable>(_ type: T.Type = T.self, from source: Int? = nil, tag: Int? = nil) async throws -> T {
        let tag = try userTag(tag)
        try checkOpen()
        return try await onLoop {
            try decode(T.self, try await receive(context: context, from: source, tag: tag, operation: "recv"))
        }
    }

    /// Receives a `T` and tells who sent it, with which tag (`MPI_Status`).
    nonisolated(nonsending) public func recvWithStatus<T: Decodable & Sendable>(
        _ type: T.Type = T.self, from source: Int? = nil, tag: Int? = nil
    ) async throws -> (value: T, status: MessageStatus) {
        let tag = try userTag(tag)
        try checkOpen()
        return try await onLoop {
            let message = try await receive(context: context, from: source, tag: tag, operation: "recv")
            return (try decode(T.self, message), status(of: message))
        }
    }

    /// Sends numbers as raw bytes, with no per-element coding (mpi4py's `comm.Send`). Receive them
    /// with ``recv(into:from:tag:)`` or ``recv(contentsOf:from:tag:)``.
    ///
    /// ```swift
    /// try await world.send(contentsOf: [1.5, 2.5], to: 1, tag: 3)
    /// ```
    ///
    /// - Throws: ``CommunicatorError/invalidRank(_:size:)``, ``CommunicatorError/invalidTag(_:)``,
    ///   ``CommunicatorError/messageTooLarge(size:limit:)``,
    ///   ``CommunicatorError/rankFailed(rank:reason:)`` once the job has failed.
    @inlinable
    nonisolated(nonsending) public func send<T: BitwiseCopyable & Sendable>(contentsOf values: [T], to destination: Int, tag: Int = 0) async throws {
        // Inlined into the caller: a small message that leaves at once is a plain call.
        if try _sendNow(values, to: destination, tag: tag) { return }
        try await _send(contentsOf: values, to: destination, tag: tag)
    }

    /// Under `withWorld`: sends a small message (`values`' bytes, read now) and returns `true`
    /// once it needs nothing more; else `false`, having sent nothing.
    ///
    /// Specialized in the caller's module (`@inlinable`), but called rather than inlined into
    /// the async caller: Swift 6.3's release build crashes splitting some async functions into
    /// which `withUnsafeBytes` was inlined (a loop that sends and receives, in a function of
    /// its own).
    @inlinable @inline(never)
    func _sendNow<T: BitwiseCopyable>(_ values: [T], to destination: Int, tag: Int) throws -> Bool {
        try values.withUnsafeBytes { body in try _sendNow(body, to: destination, tag: tag) }
    }

    /// ``_sendNow(_:to:tag:)`` of `body`.
    @usableFromInline
    func _sendNow(_ body: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws -> Bool {
        guard world.isOnLoop else { return false }
        let tag = try userTag(tag)
        try checkOpen()
        let target = try worldRank(of: destination)
        // A large one waits until it is written (backpressure): the usual way.
        guard RankMessageHeader.size + body.count < World.settledSize else { return false }
        _ = try world.writeOnLoop(context: context, tag: tag, body: body, to: target, tracked: false)
        return true
    }

    @usableFromInline
    nonisolated(nonsending) func _send<T: BitwiseCopyable & Sendable>(contentsOf values: [T], to destination: Int, tag: Int) async throws {
        let tag = try userTag(tag)
        try checkOpen()
        let target = try worldRank(of: destination)
        let size = RankMessageHeader.size + values.count * MemoryLayout<T>.stride
        // Over shared memory straight from the array into the ring, as far as it has room.
        func start() throws -> EventLoopFuture<Void>? {
            try values.withUnsafeBytes { body in try world.write(context: context, tag: tag, body: body, to: target) }
        }
        guard world.isOnLoop else {
            return try await onLoop { try await world.settle(try start(), size: size, to: target) }
        }
        if let written = try start() { try await world.settle(written, size: size, to: target) }
    }

    /// Receives raw numbers into `buffer`, from its start (mpi4py's `comm.Recv`).
    ///
    /// ```swift
    /// var values = [Double](repeating: 0, count: 2)
    /// let status = try await world.recv(into: &values, from: 0, tag: 3)
    /// ```
    ///
    /// - Returns: the message's status; `status.count(of: T.self)` elements were written.
    /// - Throws: ``CommunicatorError/malformedMessage(from:_:)`` when the message holds more
    ///   than `buffer` can take, or not a whole number of `T`s; as ``recv(_:from:tag:)`` does.
    @discardableResult
    @inlinable
    nonisolated(nonsending) public func recv<T: BitwiseCopyable & Sendable>(into buffer: inout [T], from source: Int? = nil, tag: Int? = nil) async throws -> MessageStatus {
        // Inlined into the caller: a message from one rank that is there, or comes soon, is a
        // plain call.
        if let status = try _receiveNow(into: &buffer, from: source, tag: tag) { return status }
        return try await _recv(into: &buffer, from: source, tag: tag)
    }

    /// Under `withWorld`: receives a message from `source` straight from the link into
    /// `buffer`, when the transport can and it comes within the direct path's spin; else `nil`,
    /// having received nothing (the usual way then waits). Specialized in the caller's module
    /// but not inlined, as ``_sendNow(_:to:tag:)-([T])`` is.
    @inlinable @inline(never)
    func _receiveNow<T: BitwiseCopyable>(into buffer: inout [T], from source: Int?, tag: Int?) throws -> MessageStatus? {
        // Asked before the array is made unique for writing, which a caller off the loop would
        // pay for nothing.
        guard let source, _isOnLoop else { return nil }
        return try buffer.withUnsafeMutableBytes { target in
            try _receiveNow(into: target, stride: MemoryLayout<T>.stride, from: source, tag: tag)
        }
    }

    /// Whether this runs on the rank's loop.
    @usableFromInline
    var _isOnLoop: Bool { world.isOnLoop }

    /// ``_receiveNow(into:from:tag:)`` into `target`, whose elements are `stride` bytes apart.
    /// On the loop.
    @usableFromInline
    func _receiveNow(into target: UnsafeMutableRawBufferPointer, stride: Int, from source: Int, tag: Int?) throws -> MessageStatus? {
        assert(world.isOnLoop)
        let tag = try userTag(tag)
        try checkOpen()
        return try receiveDirectly(into: target, stride: stride, from: source, tag: tag)
    }

    /// A message from `source` straight from the link into `target`, when it can (on the loop).
    @inline(__always)
    private func receiveDirectly(
        into target: UnsafeMutableRawBufferPointer, stride: Int, from source: Int, tag: Int32?
    ) throws(CommunicatorError) -> MessageStatus? {
        var byteCount = 0
        let received = world.receiveDirectly(from: try worldRank(of: source), context: context, tag: tag) { body in
            // Too large, or not whole elements: the usual way reports it. (Numbers' strides are
            // powers of two, which need no division.)
            let whole = stride & (stride &- 1) == 0 ? body.count & (stride &- 1) == 0 : body.count % stride == 0
            guard body.count <= target.count, whole else { return false }
            if !body.isEmpty { target.baseAddress!.copySmall(from: body.baseAddress!, byteCount: body.count) }
            byteCount = body.count
            return true
        }
        return received.map { MessageStatus(source: source, tag: Int($0), byteCount: byteCount) }
    }

    /// The usual way of ``recv(into:from:tag:)``: through the mailbox, after the direct path
    /// when the caller is off the loop (on it, ``_receiveNow(into:from:tag:)`` tried).
    @usableFromInline
    nonisolated(nonsending) func _recv<T: BitwiseCopyable & Sendable>(into buffer: inout [T], from source: Int?, tag: Int?) async throws -> MessageStatus {
        let tag = try userTag(tag)
        try checkOpen()
        let stride = MemoryLayout<T>.stride
        let message: RankMessage
        if world.isOnLoop {
            message = try await receive(context: context, from: source, tag: tag, operation: "recv", direct: false)
        } else {
            var direct: MessageStatus?
            let received = try await onLoop { () async throws -> RankMessage? in
                if let source, let status = try buffer.withUnsafeMutableBytes({ target in
                    try receiveDirectly(into: target, stride: stride, from: source, tag: tag)
                }) {
                    direct = status
                    return nil
                }
                return try await receive(context: context, from: source, tag: tag, operation: "recv", direct: false)
            }
            guard let received else { return direct! }
            message = received
        }
        let bytes = message.data.readableBytes
        guard bytes % stride == 0, bytes / stride <= buffer.count else {
            throw CommunicatorError.malformedMessage(
                from: localRank(of: message.source), "\(bytes) bytes do not fit a buffer of \(buffer.count) \(T.self)")
        }
        buffer.withUnsafeMutableBytes { target in
            message.data.withUnsafeReadableBytes { source in
                target.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: bytes)
            }
        }
        return status(of: message)
    }

    /// Receives raw numbers as a new array.
    nonisolated(nonsending) public func recv<T: BitwiseCopyable & Sendable>(contentsOf type: T.Type, from source: Int? = nil, tag: Int? = nil) async throws -> [T] {
        let tag = try userTag(tag)
        try checkOpen()
        let message = try await onLoop { try await receive(context: context, from: source, tag: tag, operation: "recv") }
        let stride = MemoryLayout<T>.stride
        guard message.data.readableBytes % stride == 0 else {
            throw CommunicatorError.malformedMessage(
                from: localRank(of: message.source), "\(message.data.readableBytes) bytes are not a whole number of \(T.self)")
        }
        return message.data.withUnsafeReadableBytes { raw in
            Array(unsafeUninitializedCapacity: raw.count / stride) { target, count in
                if raw.count > 0 { UnsafeMutableRawPointer(target.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
                count = raw.count / stride
            }
        }
    }

    /// Sends `value` to `destination` and receives a `T` from `source` at the same time
    /// (`MPI_Sendrecv`): the way to swap with a neighbour without deadlock.
    nonisolated(nonsending) public func sendrecv<Sent: Encodable & Sendable, Received: Decodable & Sendable>(
        _ value: Sent, to destination: Int, sendTag: Int = 0,
        from source: Int? = nil, receiveTag: Int? = nil, as type: Received.Type = Received.self
    ) async throws -> Received {
        let sendTag = try userTag(sendTag)
        let receiveTag = try receiveTag.map(userTag)
        try checkOpen()
        return try await onLoop {
            let pattern = MessagePattern(context: context, source: try source.map { try worldRank(of: $0) }, tag: receiveTag)
            let posted = world.mailbox.post(pattern)
            try await transmit(try encode(value, context: context, tag: sendTag), to: destination)
            return try decode(Received.self, try await wait(for: posted, operation: "sendrecv"))
        }
    }

    /// Waits until a message from `source` with `tag` has arrived and tells what it is, leaving
    /// it to be received (`MPI_Probe`).
    nonisolated(nonsending) public func probe(from source: Int? = nil, tag: Int? = nil) async throws -> MessageStatus {
        let tag = try userTag(tag)
        try checkOpen()
        return try await onLoop {
            let pattern = MessagePattern(context: context, source: try source.map { try worldRank(of: $0) }, tag: tag)
            let arrived = try await world.wait(from: pattern.source, until: { (try? world.mailbox.peek(pattern)) != nil || world.mailbox.failure != nil }) {
                try await world.mailbox.probe(pattern)
            }
            if let arrived { return status(of: arrived) }
            return status(of: try await world.mailbox.probe(pattern))
        }
    }

    /// What message from `source` with `tag` has arrived, if any, without waiting (`MPI_Iprobe`).
    public func iprobe(from source: Int? = nil, tag: Int? = nil) throws -> MessageStatus? {
        let tag = try userTag(tag)
        try checkOpen()
        let pattern = MessagePattern(context: context, source: try source.map { try worldRank(of: $0) }, tag: tag)
        world.pollOnce()
        return try world.mailbox.peek(pattern).map(status(of:))
    }

    /// Starts sending `value` and returns at once (`MPI_Isend`); ``SendRequest/wait()`` waits
    /// until it is written. Messages leave in the order they were started.
    public func isend<T: Encodable & Sendable>(_ value: T, to destination: Int, tag: Int = 0) throws -> SendRequest {
        let tag = try userTag(tag)
        try checkOpen()
        let destination = try worldRank(of: destination)
        let written = try world.write(try encode(value, context: context, tag: tag), to: destination)
        let done = WriteDone()
        written?.whenComplete { _ in done.value.store(true, ordering: .releasing) }
        return SendRequest(world: world, written: written, destination: destination, done: written == nil ? nil : done)
    }

    /// Posts a receive and returns at once (`MPI_Irecv`); ``ReceiveRequest/value`` waits for the
    /// message. Receives match messages in the order they were posted.
    public func irecv<T: Decodable & Sendable>(_ type: T.Type = T.self, from source: Int? = nil, tag: Int? = nil) throws -> ReceiveRequest<T> {
        let tag = try userTag(tag)
        try checkOpen()
        let pattern = MessagePattern(context: context, source: try source.map { try worldRank(of: $0) }, tag: tag)
        return ReceiveRequest(communicator: self, posted: world.mailbox.post(pattern))
    }

    func userTag(_ tag: Int) throws(CommunicatorError) -> Int32 {
        guard tag >= 0, tag <= Int(Int32.max) else { throw .invalidTag(tag) }
        return Int32(tag)
    }

    /// A tag to match, or `nil` for any.
    func userTag(_ tag: Int?) throws(CommunicatorError) -> Int32? {
        guard let tag else { return nil }
        return try userTag(tag)
    }
}

/// A send in progress, from ``Communicator/isend(_:to:tag:)``.
public struct SendRequest: Sendable {
    let world: World
    /// The write; `nil` for a message to this rank, delivered at once.
    let written: EventLoopFuture<Void>?
    let destination: Int
    let done: WriteDone?

    /// Whether the message is written (`MPI_Test`).
    public var isComplete: Bool { done?.value.load(ordering: .acquiring) ?? true }

    /// Waits until the message is written (`MPI_Wait`).
    nonisolated(nonsending) public func wait() async throws {
        if let written { try await world.completion(of: written, to: destination) }
    }
}

/// Whether a write has completed.
final class WriteDone: Sendable {
    let value = Atomic<Bool>(false)
}

/// A receive in progress, from ``Communicator/irecv(_:from:tag:)``.
public struct ReceiveRequest<T: Decodable & Sendable>: Sendable {
    let communicator: Communicator
    let posted: PostedReceive

    /// Whether the message has arrived (`MPI_Test`).
    public var isComplete: Bool { posted.outcome != nil }

    /// Waits for the message and decodes it (`MPI_Wait`).
    nonisolated(nonsending) public var value: T {
        get async throws { try await valueWithStatus.value }
    }

    /// Waits for the message; returns it and its status.
    nonisolated(nonsending) public var valueWithStatus: (value: T, status: MessageStatus) {
        get async throws {
            let communicator = communicator, posted = posted
            let message = try await communicator.onLoop { try await communicator.wait(for: posted, operation: "irecv") }
            return (try communicator.decode(T.self, message), communicator.status(of: message))
        }
    }

    /// Withdraws the receive, if no message has matched it yet (`MPI_Cancel`); waiting then
    /// throws `CancellationError`.
    public func cancel() {
        communicator.world.mailbox.withdraw(posted, because: CancellationError())
    }
}
