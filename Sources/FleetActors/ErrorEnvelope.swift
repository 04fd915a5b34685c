import FleetWire
import NIOCore

/// Thrown errors as bytes, the way a reply carries them: for the layers above that return
/// several outcomes in one reply (FleetJobs' job batches), so that an error still arrives as its
/// own type where the receiver has it, and as ``RemoteError`` where it does not.
package enum ErrorEnvelope {
    /// The bytes of `error`: a reply's outcome byte and body.
    package static func encode(_ error: any Error) -> [UInt8] {
        var reply = FleetResultHandler.reply(callID: 0, thrown: error)
        reply.moveReaderIndex(forwardBy: 8)
        return Array(reply.readableBytesView)
    }

    /// The error ``encode(_:)`` wrote.
    package static func decode(_ bytes: [UInt8]) -> any Error {
        var buffer = ByteBuffer(bytes: bytes)
        let decoder = BinaryDecoder()
        guard let outcome = buffer.readInteger(as: UInt8.self) else {
            return RemoteCallError.invalidResult("empty error")
        }
        switch ReplyOutcome(rawValue: outcome) {
        case .codableError?:
            return FleetActorSystem.thrownError(in: &buffer, decoder: decoder)
        case .error?:
            guard let thrown = try? decoder.decode(ThrownError.self, from: buffer) else {
                return RemoteCallError.invalidResult("malformed error")
            }
            return RemoteError(typeName: thrown.typeName, message: thrown.message)
        case .failure?:
            guard let failure = try? decoder.decode(CallFailure.self, from: buffer) else {
                return RemoteCallError.invalidResult("malformed failure")
            }
            switch failure {
            case .actorNotFound: return RemoteCallError.invalidResult("actor not found")
            case let .targetNotFound(detail): return RemoteCallError.targetNotFound(detail)
            case let .invalidArguments(detail): return RemoteCallError.invalidArguments(detail)
            case let .invalidResult(detail): return RemoteCallError.invalidResult(detail)
            }
        case .value?, .void?, nil:
            return RemoteCallError.invalidResult("not an error")
        }
    }
}
