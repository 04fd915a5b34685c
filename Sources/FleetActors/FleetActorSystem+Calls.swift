import Distributed
import FleetWire
import NIOCore

extension FleetActorSystem {
    /// Sends a recorded invocation to the node hosting `recipient` and waits for the reply.
    ///
    /// - Returns: the body of a returned value, and the decoder for it.
    /// - Throws: the remote function's error, ``RemoteError``, or ``RemoteCallError``.
    func call(
        _ recipient: FleetActorID, target: String, invocation: inout FleetInvocationEncoder
    ) async throws -> (ByteBuffer, BinaryDecoder) {
        // The open connection without a suspension point; dialling only when there is none.
        let open = try openConnection(for: recipient)
        let connection = if let open { open } else { try await connection(for: recipient) }
        let id = connection.nextCallID()
        let payload = invocation.finish(callID: id, recipient: recipient, target: target)
        let timeout = RemoteCall.timeout ?? configuration.callTimeout
        var reply = try await connection.call(
            payload, id: id, timeout: timeout, keepingAlive: invocation.sentIDs.localActors(in: self))
        guard let decoder = connection.decoder, let outcome = reply.readInteger(as: UInt8.self) else {
            throw RemoteCallError.invalidResult("empty reply")
        }
        switch ReplyOutcome(rawValue: outcome) {
        case .value?, .void?:
            return (reply, decoder)
        case .codableError?:
            throw Self.thrownError(in: &reply, decoder: decoder)
        case .error?:
            let thrown = try decodeReplyPart(ThrownError.self, from: reply, decoder: decoder)
            throw RemoteError(typeName: thrown.typeName, message: thrown.message)
        case .failure?:
            let failure = try decodeReplyPart(CallFailure.self, from: reply, decoder: decoder)
            throw failure.error(recipient: recipient)
        case nil:
            throw RemoteCallError.invalidResult("unknown reply outcome \(outcome)")
        }
    }

    /// The error a remote function threw: as its own type where this process knows it and can
    /// decode it, else as a ``RemoteError`` with its name and description.
    static func thrownError(in reply: inout ByteBuffer, decoder: BinaryDecoder) -> any Error {
        guard let header = reply.readLengthPrefixedSlice(),
              let thrown = try? decoder.decode(ThrownError.self, from: header)
        else {
            return RemoteCallError.invalidResult("malformed error reply")
        }
        guard let name = thrown.mangledTypeName else {
            return RemoteError(typeName: thrown.typeName, message: thrown.message)
        }
        if let type = _typeByName(name) as? any (Error & Decodable).Type,
           let error = try? decoder.decode(type, from: reply) {
            return error
        }
        let payload = reply.getBytes(at: reply.readerIndex, length: reply.readableBytes) ?? []
        return RemoteError(typeName: thrown.typeName, message: thrown.message, original: (name, payload))
    }

    private func decodeReplyPart<T: Decodable>(_ type: T.Type, from body: ByteBuffer, decoder: BinaryDecoder) throws -> T {
        do {
            return try decoder.decode(type, from: body)
        } catch {
            throw RemoteCallError.invalidResult("malformed reply: \(error)")
        }
    }
}

extension CallFailure {
    /// The caller's view of a failure reported by the node that got the call.
    func error(recipient: FleetActorID) -> RemoteCallError {
        switch self {
        case .actorNotFound: .actorNotFound(recipient)
        case let .targetNotFound(detail): .targetNotFound(detail)
        case let .invalidArguments(detail): .invalidArguments(detail)
        case let .invalidResult(detail): .invalidResult(detail)
        }
    }
}
