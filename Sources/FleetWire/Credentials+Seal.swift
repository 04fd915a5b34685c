extension Credentials {
    /// The bytes a seal adds to a datagram: an HMAC-SHA256 tag with a secret, none without.
    package var sealLength: Int {
        switch self {
        case .secret: 32
        case .insecure: 0
        }
    }

    /// `payload` followed by a tag that proves it came from a peer that knows the secret
    /// (HMAC-SHA256, labelled apart from the handshake's proofs); with ``insecure``, the payload
    /// alone. For connectionless messages, such as a node's announcement that it is there: a
    /// sealed message can be replayed, so it may only say what is safe to hear twice.
    package func seal(_ payload: [UInt8]) -> [UInt8] {
        switch self {
        case let .secret(secret): payload + Handshake.mac(secret, side: .datagram, transcript: payload)
        case .insecure: payload
        }
    }

    /// The payload of a datagram sealed with ``seal(_:)`` under the same credentials, or `nil`
    /// when its tag does not check out (a different secret, a forgery, a truncated datagram).
    /// The tag is checked in constant time.
    package func unseal(_ datagram: [UInt8]) -> [UInt8]? {
        switch self {
        case let .secret(secret):
            guard datagram.count >= sealLength else { return nil }
            let payload = Array(datagram.dropLast(sealLength))
            let tag = Array(datagram.suffix(sealLength))
            return Handshake.isValid(tag, secret, side: .datagram, transcript: payload) ? payload : nil
        case .insecure:
            return datagram
        }
    }
}
