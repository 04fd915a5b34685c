import Distributed
import FleetWire
import NIOCore

/// Reads a call's arguments, in order, for the distributed function being run.
///
/// You do not use it directly: ``FleetActorSystem`` hands it to the Distributed runtime.
public struct FleetInvocationDecoder: DistributedTargetInvocationDecoder {
    /// Arguments are `Codable`.
    public typealias SerializationRequirement = any Codable

    var arguments: ByteBuffer
    let genericSubstitutions: [String]
    let decoder: BinaryDecoder

    init(arguments: ByteBuffer, genericSubstitutions: [String], decoder: BinaryDecoder) {
        self.arguments = arguments
        self.genericSubstitutions = genericSubstitutions
        self.decoder = decoder
    }

    /// The generic parameters the caller recorded, resolved to types of this process.
    public mutating func decodeGenericSubstitutions() throws -> [any Any.Type] {
        try genericSubstitutions.map { name in
            guard let type = _typeByName(name) else {
                throw InvalidArguments("unknown generic substitution type \(name)")
            }
            return type
        }
    }

    /// Decodes the next argument as `Argument`.
    ///
    /// - Throws: an error reported to the caller as ``RemoteCallError/invalidArguments(_:)``.
    public mutating func decodeNextArgument<Argument: Codable>() throws -> Argument {
        guard let bytes = arguments.readLengthPrefixedSlice() else {
            throw InvalidArguments("too few arguments: expected one of type \(Argument.self)")
        }
        do {
            return try decoder.decode(Argument.self, from: bytes)
        } catch {
            throw InvalidArguments("argument of type \(Argument.self): \(error)")
        }
    }

    /// Not sent (see ``FleetInvocationEncoder/recordErrorType(_:)``).
    public mutating func decodeErrorType() throws -> (any Any.Type)? { nil }

    /// Not sent (see ``FleetInvocationEncoder/recordReturnType(_:)``).
    public mutating func decodeReturnType() throws -> (any Any.Type)? { nil }
}

/// Arguments that could not be decoded; reported to the caller as
/// ``RemoteCallError/invalidArguments(_:)``, never as the function's own error.
struct InvalidArguments: Error {
    let detail: String
    init(_ detail: String) { self.detail = detail }
}
