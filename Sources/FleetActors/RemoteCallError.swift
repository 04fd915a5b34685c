/// Why a remote call failed without reaching the called function's own result: each case is a
/// distinct failure the caller can act on. Errors the called function throws arrive as
/// themselves (when `Codable`) or as ``RemoteError``.
public enum RemoteCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No actor with this ID lives on its node (never did, or it was deinitialized), or no actor
    /// is published under the name.
    case actorNotFound(FleetActorID)
    /// The remote node has no such distributed function: the two sides run different builds.
    case targetNotFound(String)
    /// The remote side could not decode the call's arguments.
    case invalidArguments(String)
    /// The reply could not be decoded as the expected result.
    case invalidResult(String)
    /// No reply came within the deadline (``RemoteCall/with(timeout:isolation:_:)`` or
    /// ``FleetActorSystem/Configuration/callTimeout``).
    case timedOut(after: Duration)
    /// The connection to the actor's node was lost before the reply arrived, or could not be
    /// made (the reason says which).
    case connectionLost(reason: String)
    /// This process has no route to the actor's node: it never connected to it and the ID
    /// carries no endpoint to dial.
    case unreachable(FleetActorID)
    /// The actor system was shut down.
    case systemShutDown

    public var description: String {
        switch self {
        case let .actorNotFound(id): "no actor \(id) on its node"
        case let .targetNotFound(target): "the remote node has no distributed function \(target) (different build?)"
        case let .invalidArguments(detail): "the remote node could not decode the arguments: \(detail)"
        case let .invalidResult(detail): "the reply could not be decoded: \(detail)"
        case let .timedOut(after): "no reply within \(after)"
        case let .connectionLost(reason): "connection lost: \(reason)"
        case let .unreachable(id): "no route to the node of actor \(id)"
        case .systemShutDown: "the actor system is shut down"
        }
    }
}

/// An error thrown by a remote distributed function whose type is not `Codable` (or unknown
/// here): its type name and description, as the remote side printed them.
///
/// ```swift
/// do { try await account.withdraw(100) }
/// catch let error as RemoteError { print(error.typeName, error.message) }
/// ```
public struct RemoteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The thrown error's type, fully qualified (`Module.Type`).
    public var typeName: String
    /// `String(describing:)` of the thrown error.
    public var message: String
    /// For a `Codable` error whose type this process does not have: its mangled type name and
    /// encoding, kept so that rethrowing it to a further peer (a node relaying a worker's error
    /// to its client) hands on the original error, which that peer may know.
    var original: (mangledTypeName: String, payload: [UInt8])?

    /// Creates a remote error.
    public init(typeName: String, message: String) {
        self.typeName = typeName
        self.message = message
    }

    init(typeName: String, message: String, original: (mangledTypeName: String, payload: [UInt8])?) {
        self.typeName = typeName
        self.message = message
        self.original = original
    }

    public static func == (lhs: RemoteError, rhs: RemoteError) -> Bool {
        lhs.typeName == rhs.typeName && lhs.message == rhs.message
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(typeName)
        hasher.combine(message)
    }

    public var description: String { "remote \(typeName): \(message)" }
}
