import NIOCore

/// One unit on the wire: a kind byte, a 4-byte big-endian payload length, then the payload.
///
/// ```
/// +------+----------------+-----------------------+
/// | kind | length (u32BE) | payload (length bytes) |
/// +------+----------------+-----------------------+
/// ```
///
/// Every Fleet connection — remote actors, job nodes, MPI's TCP transport — speaks in frames.
/// Payloads are usually values in the ``BinaryEncoder`` format:
///
/// ```swift
/// let frame = try Frame(kind: .message, encoding: ["hello", "world"])
/// let words = try frame.decode([String].self)
/// ```
public struct Frame: Sendable, Hashable {
    /// What a frame is for. A byte that names no kind is a protocol error.
    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        /// Handshake, client to server: protocol, version, nonce, who the client is.
        case hello = 1
        /// Handshake, server to client: the server's nonce and who the server is.
        case challenge = 2
        /// Handshake, client to server: the client's proof of the shared secret.
        case proof = 3
        /// Handshake, server to client: accepted, with the server's proof of the secret.
        case welcome = 4
        /// Handshake refused, with a reason the other side can print.
        case reject = 5
        /// An application message (the payload's meaning belongs to the layer above).
        case message = 16
        /// A protocol error reported to the peer just before the connection closes.
        case error = 17
        /// A liveness probe; every Fleet connection answers it with ``pong`` by itself.
        case ping = 18
        /// The answer to ``ping``.
        case pong = 19
        /// An orderly goodbye: the sender will send nothing more.
        case goodbye = 20
        /// FleetActors: the sending actor system introduces itself (its node identity).
        case introduce = 32
        /// FleetActors: a call to a distributed actor's method.
        case call = 33
        /// FleetActors: the outcome of a ``call``.
        case reply = 34
        /// FleetActors: the caller no longer waits for a ``call`` (cancelled or timed out).
        case cancel = 35
        /// FleetActors: the sender no longer holds a reference to one of the receiver's actors
        /// (it counts how many times the reference reached it, so that a copy still on the way
        /// keeps the actor alive).
        case release = 36
        /// FleetMPI: a message between two ranks (a fixed header, then the data).
        case rankMessage = 48
    }

    /// The size of the header in bytes: one kind byte and a 32-bit length.
    public static let headerSize = 5

    /// An empty buffer for a payload, with room for the frame's header in front of it:
    /// ``FrameEncoder`` writes the header there and sends the buffer as it is — no second
    /// buffer, no copy. Write the payload after its reader index, as in any buffer.
    ///
    /// ```swift
    /// var payload = Frame.payloadBuffer(capacity: 64)
    /// payload.writeInteger(UInt64(42))
    /// channel.writeAndFlush(Frame(kind: .message, payload: payload), promise: nil)
    /// ```
    ///
    /// - Parameter capacity: the payload bytes to make room for (the buffer grows as usual).
    public static func payloadBuffer(capacity: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headerSize + capacity)
        buffer.writeRepeatingByte(0, count: headerSize)
        buffer.moveReaderIndex(forwardBy: headerSize)
        return buffer
    }

    /// A payload of `size` bytes that `write` fills, in a buffer that holds the header of a
    /// frame of `kind` in front of it already: ``FrameEncoder`` and ``FrameWriter`` send it as
    /// it is. All of it is written in one go, for the small messages that are written most.
    package static func payloadBuffer(
        kind: Kind, size: Int, allocator: ByteBufferAllocator = ByteBufferAllocator(),
        writing write: (UnsafeMutableRawBufferPointer) -> Void
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headerSize + size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: headerSize + size) { raw in
            raw.storeBytes(of: kind.rawValue, as: UInt8.self)
            raw.storeBytes(of: UInt32(truncatingIfNeeded: size).bigEndian, toByteOffset: 1, as: UInt32.self)
            write(UnsafeMutableRawBufferPointer(rebasing: raw[headerSize..<(headerSize + size)]))
            return headerSize + size
        }
        buffer.moveReaderIndex(forwardBy: headerSize)
        return buffer
    }

    /// The default largest payload a connection accepts: 64 MiB.
    public static let defaultMaximumPayloadSize = 64 << 20

    /// What the frame is for.
    public var kind: Kind

    /// The frame's payload.
    public var payload: ByteBuffer

    /// Creates a frame of `kind` carrying `payload`.
    public init(kind: Kind, payload: ByteBuffer = ByteBuffer()) {
        self.kind = kind
        self.payload = payload
    }

    /// Writes the header of a frame of `kind` into the room in front of `payload`
    /// (``payloadBuffer(capacity:allocator:)``), unless it is there already. Call it where the
    /// payload is finished and its buffer not shared yet: in the channel's pipeline, writing
    /// into a buffer shared with the frame would copy it. ``FrameEncoder`` then sends the buffer
    /// as it is (and writes the header itself where it is missing or out of date).
    package static func writeHeader(_ kind: Kind, into payload: inout ByteBuffer) {
        guard payload.readerIndex >= headerSize, !hasHeader(kind, payload) else { return }
        let start = payload.readerIndex - headerSize
        payload.setInteger(kind.rawValue, at: start)
        payload.setInteger(UInt32(truncatingIfNeeded: payload.readableBytes), at: start + 1)
    }

    /// Turns `payload` into the whole frame of `kind` that carries it, the bytes to send: writes
    /// the header into the room in front (unless it is there already) and moves the reader index
    /// onto it. `false`, leaving `payload` as it is, when it has no room in front.
    static func wrap(_ payload: inout ByteBuffer, in kind: Kind) -> Bool {
        guard payload.readerIndex >= headerSize else { return false }
        writeHeader(kind, into: &payload)
        payload.moveReaderIndex(to: payload.readerIndex - headerSize)
        return true
    }

    /// Whether the room in front of `payload` holds the header of a frame of `kind` with it.
    static func hasHeader(_ kind: Kind, _ payload: ByteBuffer) -> Bool {
        var whole = payload
        whole.moveReaderIndex(to: payload.readerIndex - headerSize)
        return whole.getInteger(at: whole.readerIndex, as: UInt8.self) == kind.rawValue
            && whole.getInteger(at: whole.readerIndex + 1, as: UInt32.self) == UInt32(truncatingIfNeeded: payload.readableBytes)
    }

    /// Creates a frame of `kind` whose payload is `value` in the ``BinaryEncoder`` format.
    public init<T: Encodable>(kind: Kind, encoding value: T) throws {
        var payload = ByteBuffer()
        try BinaryEncoder().encode(value, into: &payload)
        self.init(kind: kind, payload: payload)
    }

    /// Decodes the payload as a `T` in the ``BinaryEncoder`` format.
    ///
    /// - Throws: ``WireError/malformedPayload(_:_:)`` when the payload is not a valid `T`.
    public func decode<T: Decodable>(_ type: T.Type) throws(WireError) -> T {
        do {
            return try BinaryDecoder().decode(type, from: payload)
        } catch {
            throw .malformedPayload(kind, "\(error)")
        }
    }
}
