import Crypto

/// The messages of the handshake that opens every Fleet connection.
///
/// ```
/// client                                   server
///   | hello(protocol, version, nonceC, auth, peer) ->
///   |          <- challenge(nonceS, auth, peer)     (or reject(reason))
///   | proof(HMAC(secret, "client" | hello | challenge)) ->
///   |          <- welcome(HMAC(secret, "server" | hello | challenge))   (or reject(reason))
/// ```
///
/// Both sides prove the secret over the whole transcript (both messages, with fresh nonces), so a
/// recorded exchange cannot be replayed, what each side said about itself cannot be altered, and
/// neither side sends the secret. Comparison is constant-time (`HMAC.isValidAuthenticationCode`).
/// The server sends nothing that depends on the secret until the client has proved it.
enum Handshake {
    /// The protocol name in `hello`: a peer that sends anything else is not Fleet.
    static let protocolName = "fleet"

    static let nonceSize = 32

    enum Authentication: String, Codable, Sendable {
        case hmacSHA256 = "hmac-sha256"
        case none
    }

    /// The first message. Its first two fields must never change shape, so that any two versions
    /// can at least tell each other that they differ.
    struct Hello: Codable, Sendable {
        var protocolName: String
        var version: ProtocolVersion
        var nonce: [UInt8]
        var authentication: Authentication
        var peer: PeerInfo
    }

    struct Challenge: Codable, Sendable {
        var nonce: [UInt8]
        var authentication: Authentication
        var peer: PeerInfo
    }

    struct Proof: Codable, Sendable {
        var mac: [UInt8]
    }

    struct Welcome: Codable, Sendable {
        var mac: [UInt8]
    }

    struct Reject: Codable, Sendable {
        var reason: String
    }

    enum Side: String {
        case client
        case server
        /// A datagram sealed with ``Credentials/seal(_:)``: no transcript, no nonce.
        case datagram
    }

    static func makeNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceSize).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// HMAC-SHA256 over the side's label and the transcript: the `hello` and `challenge` payloads
    /// exactly as sent. The transcript holds both nonces, so each proof is fresh, and everything
    /// either side said about itself (version, authentication mode, ``PeerInfo``), so none of it
    /// can be altered in flight without the proofs failing.
    static func mac(_ secret: Secret, side: Side, transcript: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message(side, transcript), using: SymmetricKey(data: secret.bytes)))
    }

    /// Checks a peer's proof in constant time.
    static func isValid(_ mac: [UInt8], _ secret: Secret, side: Side, transcript: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(
            mac, authenticating: message(side, transcript), using: SymmetricKey(data: secret.bytes)
        )
    }

    private static func message(_ side: Side, _ transcript: [UInt8]) -> [UInt8] {
        Array("fleet/\(ProtocolVersion.current.major) \(side.rawValue)".utf8) + transcript
    }
}

/// Why a handshake failed.
public enum HandshakeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server refused the client, and said why (wrong secret, version mismatch, …).
    case rejected(reason: String)
    /// This side refused the peer, for the reason given (also sent to the peer).
    case refused(reason: String)
    /// The server could not prove that it knows the secret: a wrong secret, or an impostor.
    case serverNotAuthenticated
    /// The handshake did not finish in time.
    case timedOut(seconds: Double)
    /// The connection closed during the handshake.
    case connectionClosed

    public var description: String {
        switch self {
        case let .rejected(reason): "rejected by the server: \(reason)"
        case let .refused(reason): "refused the peer: \(reason)"
        case .serverNotAuthenticated:
            "the server failed to prove the shared secret (wrong secret on one side, or not the server you meant)"
        case let .timedOut(seconds): "handshake timed out after \(seconds) s"
        case .connectionClosed: "connection closed during the handshake"
        }
    }
}
