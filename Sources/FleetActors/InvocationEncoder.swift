import Distributed
import FleetWire
import NIOCore

/// Records a remote call's arguments and generic substitutions, writing the arguments straight
/// into the buffer that becomes the call frame's payload.
///
/// You do not use it directly: the compiler's distributed thunks do, for each call on a remote
/// actor reference.
public struct FleetInvocationEncoder: DistributedTargetInvocationEncoder {
    /// Arguments are `Codable`.
    public typealias SerializationRequirement = any Codable

    var buffer = ByteBuffer.callBuffer()
    var genericSubstitutions: [String] = []
    /// The actor IDs among the arguments.
    let sentIDs = SentActorIDs()
    private let encoder: BinaryEncoder

    init() {
        var encoder = BinaryEncoder()
        encoder.context = sentIDs
        self.encoder = encoder
    }

    /// Records a generic parameter of the called function, by mangled type name.
    public mutating func recordGenericSubstitution<T>(_ type: T.Type) throws {
        guard let name = _mangledTypeName(type) else {
            throw RemoteCallError.invalidArguments("generic substitution \(type) has no mangled name")
        }
        genericSubstitutions.append(name)
    }

    /// Appends one argument, length-prefixed, in the binary coder's format.
    public mutating func recordArgument<Value: Codable>(_ argument: RemoteCallArgument<Value>) throws {
        do {
            try buffer.writeLengthPrefixed { try encoder.encode(argument.value, into: &$0) }
        } catch {
            throw RemoteCallError.invalidArguments("cannot encode argument '\(argument.effectiveLabel)': \(error)")
        }
    }

    /// Not sent: the target's name determines the return type.
    public mutating func recordReturnType<R: Codable>(_ type: R.Type) throws {}

    /// Not sent: errors travel with their own type name.
    public mutating func recordErrorType<E: Error>(_ type: E.Type) throws {}

    /// Seals the arguments section.
    public mutating func doneRecording() throws {
        buffer.setInteger(UInt32(buffer.readableBytes - callPrefixSize), at: buffer.readerIndex + 8)
    }

    /// Sets the call ID, appends the header naming the recipient and the target, and hands over
    /// the finished payload (the encoder keeps no reference to it, so that nothing copies it).
    mutating func finish(callID: UInt64, recipient: FleetActorID, target: String) -> ByteBuffer {
        buffer.setInteger(callID, at: buffer.readerIndex)
        buffer.writeCallHeader(CallHeader(recipient: recipient, target: target, genericSubstitutions: genericSubstitutions))
        Frame.writeHeader(.call, into: &buffer)
        defer { buffer = ByteBuffer() }
        return buffer
    }
}
