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
