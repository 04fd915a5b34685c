#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The shared secret that Fleet peers prove to each other.
///
/// Fleet has no built-in secret. It comes from a file (`--secret-file PATH`) or from the
/// `FLEET_SECRET` environment variable, never from the command line, where other users could
/// read it in the process list. A trailing newline in the file is ignored.
///
/// ```swift
/// let secret = try Secret(contentsOfFile: "/etc/fleet/secret")
/// ```
public struct Secret: Sendable, Hashable, CustomStringConvertible {
    /// The name of the environment variable read by ``fromEnvironment(_:)``.
    public static let environmentVariable = "FLEET_SECRET"

    let bytes: [UInt8]

    /// Creates a secret from its bytes.
    ///
    /// - Throws: ``SecretError/empty(source:)`` for an empty secret.
    public init(_ bytes: some Sequence<UInt8>, source: String = "secret") throws(SecretError) {
        self.bytes = Array(bytes)
        guard !self.bytes.isEmpty else { throw .empty(source: source) }
    }

    /// Reads a secret from a file, dropping one trailing newline.
    public init(contentsOfFile path: String) throws(SecretError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path)
        }
        var bytes = [UInt8](data)
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        try self.init(bytes, source: path)
    }

    /// The secret in `FLEET_SECRET`, or `nil` when the variable is not set.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> Secret? {
        guard let value = environment[environmentVariable] else { return nil }
        return try Secret(Array(value.utf8), source: environmentVariable)
    }

    /// Never prints the secret itself.
    public var description: String { "Secret(\(bytes.count) bytes)" }
}

/// Why a secret could not be had.
public enum SecretError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The secret file does not exist or cannot be read.
    case unreadable(path: String)
    /// The secret is empty.
    case empty(source: String)
    /// Neither a secret file nor `FLEET_SECRET` was given, and insecure mode was not asked for.
    case missing
    /// Insecure mode (no secret) was asked for on an address other than loopback.
    case insecureRequiresLoopback(host: String)

    public var description: String {
        switch self {
        case let .unreadable(path): "cannot read the secret file '\(path)'"
        case let .empty(source): "the secret from \(source) is empty"
        case .missing:
            "no secret: pass --secret-file PATH or set FLEET_SECRET " +
            "(or --insecure, which only works on loopback)"
        case let .insecureRequiresLoopback(host):
            "refusing to run without a secret on '\(host)': --insecure is allowed on loopback " +
            "(127.0.0.1, ::1, localhost) only"
        }
    }
}

/// How a peer proves itself: with a shared ``Secret``, or not at all.
public enum Credentials: Sendable, Hashable {
    /// Both sides prove knowledge of the secret (HMAC-SHA256 challenge/response).
    case secret(Secret)
    /// No authentication. Servers accept this on loopback addresses only.
    case insecure

    /// Resolves credentials the way every Fleet command does: `--secret-file` first, then
    /// `FLEET_SECRET`, then `--insecure`; otherwise it refuses.
    ///
    /// - Parameters:
    ///   - secretFile: the path given with `--secret-file`, if any.
    ///   - insecure: whether `--insecure` was given.
    ///   - environment: where `FLEET_SECRET` is looked up.
    /// - Throws: ``SecretError/missing`` when there is no secret and insecure mode was not asked for.
    public static func resolve(
        secretFile: String?,
        insecure: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> Credentials {
        if let secretFile { return .secret(try Secret(contentsOfFile: secretFile)) }
        if let secret = try Secret.fromEnvironment(environment) { return .secret(secret) }
        if insecure { return .insecure }
        throw .missing
    }
}
