import NIOCore

/// Links whose messages a rank takes by polling, on its event loop, rather than by reads the
/// loop is told of: ``SharedMemoryLinks`` and ``LibraryLinks``. Every member must be used on
/// the rank's loop. Classes, so that a reference to them is one pointer to retain.
protocol PolledLinks: AnyObject, Sendable {
    /// Which transport these are.
    var transport: Launcher.Transport { get }

    /// Starts writing `data` (a message with its header) to `destination`.
    ///
    /// - Returns: `nil` when it is written already; else a future that completes once it is.
    func write(_ data: ByteBuffer, to destination: Int) -> EventLoopFuture<Void>?

    /// Starts writing a message of `context` and `tag` whose body is `body`, read now (the
    /// memory may change once this returns).
    ///
    /// - Returns: as ``write(_:to:)``.
    func write(context: UInt64, tag: Int32, body: UnsafeRawBufferPointer, to destination: Int) -> EventLoopFuture<Void>?

    /// Waits until `done` holds: polls for a while, then runs `suspend` (which waits for the
    /// same thing to be signalled) while the links are still driven.
    ///
    /// - Returns: what `suspend` returned, or `nil` when `done` held without it.
    nonisolated(nonsending) func wait<T>(until done: () -> Bool, orSuspend suspend: nonisolated(nonsending) () async throws -> T) async throws -> T?

    /// Takes what has arrived (into the mailbox) and moves writes on, once, without waiting.
    func poll()

    /// Receives the next message from `source` straight from the link, waiting for it up to
    /// ``directReceiveSpin`` (or the spin budget, if shorter), when it is whole, of `context` and `tag` (or any tag), and `take`
    /// accepts its body (the bytes are valid during the call only). `nil` when the next message
    /// is another, does not come in time, or is declined: the caller then takes the usual way,
    /// and the message is still there for it. Call only when no receive is posted and no message
    /// from `source` waits in the mailbox, so that this one cannot overtake another in matching
    /// order. (A receive posted from another thread while this one polls comes after it, as MPI
    /// allows for receives made concurrently.) A goodbye taken meanwhile is reported as
    /// ``poll()`` reports it, and the call returns `nil`.
    ///
    /// - Returns: the message's tag.
    func receiveDirectly(
        from source: Int, context: UInt64, tag: Int32?, giveUp: () -> Bool, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32?

    /// Tells every other rank that nothing more comes from this one, after what was written.
    func sayGoodbye()

    /// Whether every message written so far has left.
    var allWritten: Bool { get }

    /// The rank finished: release the links.
    func close()

    /// The rank's program failed with `reason`: end the job where the launcher cannot.
    func abort(_ reason: String)
}

extension PolledLinks {
    /// Links without a direct path take every message the usual way.
    func receiveDirectly(
        from source: Int, context: UInt64, tag: Int32?, giveUp: () -> Bool, take: (UnsafeRawBufferPointer) -> Bool
    ) -> Int32? {
        nil
    }

    /// Copies the message into a buffer and writes that (links that cannot write from memory
    /// directly).
    func write(context: UInt64, tag: Int32, body: UnsafeRawBufferPointer, to destination: Int) -> EventLoopFuture<Void>? {
        write(RankMessageHeader.message(context: context, tag: tag, body: body), to: destination)
    }
}
