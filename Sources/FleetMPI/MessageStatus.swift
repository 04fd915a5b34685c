/// What a received (or probed) message was: MPI's `MPI_Status`.
public struct MessageStatus: Sendable, Hashable {
    /// The rank that sent it, in the communicator it was received on.
    public var source: Int
    /// Its tag.
    public var tag: Int
    /// The size of its data in bytes.
    public var byteCount: Int

    /// How many `T`s the data holds, for messages sent with ``Communicator/send(contentsOf:to:tag:)``.
    public func count<T: BitwiseCopyable>(of type: T.Type) -> Int {
        byteCount / MemoryLayout<T>.stride
    }
}
