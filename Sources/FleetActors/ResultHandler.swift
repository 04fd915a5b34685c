import Distributed
import FleetWire
import NIOCore

/// Sends the outcome of a call that the peer made back to it: the returned value, `Void`, or
/// the thrown error (as itself when `Codable`, else by type name and description).
///
/// You do not use it directly: ``FleetActorSystem`` hands it to the Distributed runtime.
public struct FleetResultHandler: DistributedTargetInvocationResultHandler {
    /// Results are `Codable`.
    public typealias SerializationRequirement = any Codable

    let callID: UInt64
    let connection: ActorConnection
    let system: FleetActorSystem

    /// Sends the returned value.
    public func onReturn<Success: Codable>(value: Success) async throws {
        send(value: value)
    }

    /// Sends that the function returned.
    public func onReturnVoid() async throws {
        sendVoid()
    }

    /// Sends the thrown error: as itself when `Codable`, else by type name and description.
    public func onThrow<Err: Error>(error: Err) async throws {
        send(thrown: error)
    }

    func send<Success: Codable>(value: Success) {
        var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .value)
        let sentIDs = SentActorIDs()
        var encoder = BinaryEncoder()
        encoder.context = sentIDs
        do {
            try encoder.encode(value, into: &reply)
        } catch {
            return fail(.invalidResult("cannot encode the result of type \(Success.self): \(error)"))
        }
        Frame.writeHeader(.reply, into: &reply)
        connection.reply(reply, to: callID, keepingAlive: sentIDs.localActors(in: system))
    }

    func sendVoid() {
        var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .void)
        Frame.writeHeader(.reply, into: &reply)
        connection.reply(reply, to: callID)
    }

    func send(thrown error: any Error) {
        connection.reply(Self.reply(callID: callID, thrown: error), to: callID)
    }

    /// Reports that the call could not be run.
    func fail(_ failure: CallFailure) {
        var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .failure)
        try? BinaryEncoder().encode(failure, into: &reply)
        connection.reply(reply, to: callID)
    }

    /// The reply for a thrown error: a system failure when the runtime could not run the call,
    /// the error itself when it is `Codable`, else its type name and description.
    static func reply(callID: UInt64, thrown error: any Error) -> ByteBuffer {
        if let failure = CallFailure(runtimeError: error) {
            var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .failure)
            try? BinaryEncoder().encode(failure, into: &reply)
            return reply
        }
        if let remote = error as? RemoteError {
            // Relaying an error from a further peer: hand it on as it came.
            let described = ThrownError(
                mangledTypeName: remote.original?.mangledTypeName, typeName: remote.typeName, message: remote.message)
            if let original = remote.original {
                var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .codableError)
                if (try? reply.writeLengthPrefixed({ try BinaryEncoder().encode(described, into: &$0) })) != nil {
                    reply.writeBytes(original.payload)
                    return reply
                }
            }
            var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .error)
            try? BinaryEncoder().encode(ThrownError(mangledTypeName: nil, typeName: remote.typeName, message: remote.message), into: &reply)
            return reply
        }
        let type = type(of: error)
        var described = ThrownError(
            mangledTypeName: nil, typeName: String(reflecting: type), message: String(describing: error))
        if let codable = error as? any (Error & Codable), let mangled = _mangledTypeName(type) {
            described.mangledTypeName = mangled
            var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .codableError)
            do {
                try reply.writeLengthPrefixed { try BinaryEncoder().encode(described, into: &$0) }
                try BinaryEncoder().encode(codable, into: &reply)
                return reply
            } catch {
                described.mangledTypeName = nil   // Falls back to name and description.
            }
        }
        var reply = ByteBuffer.replyBuffer(callID: callID, outcome: .error)
        try? BinaryEncoder().encode(described, into: &reply)
        return reply
    }
}

extension CallFailure {
    /// The failure for errors that come from running the call rather than from the function.
    init?(runtimeError error: any Error) {
        if let invalid = error as? InvalidArguments {
            self = .invalidArguments(invalid.detail)
        } else if let runtime = error as? ExecuteDistributedTargetError {
            switch runtime.errorCode {
            case .targetAccessorNotFound: self = .targetNotFound(runtime.message)
            default: self = .invalidArguments(runtime.message)
            }
        } else {
            return nil
        }
    }
}
