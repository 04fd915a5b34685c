import NIOCore
import NIOSSL

/// TLS for a Fleet connection, under the same handshake.
///
/// TLS adds encryption and server identity; the shared-secret handshake still runs inside it, so
/// a client with a valid certificate chain but the wrong secret is still refused.
///
/// ```swift
/// // Server
/// let tls = TLSOptions(certificateChainFile: "node.pem", privateKeyFile: "node.key")
/// // Client that trusts a private CA
/// let tls = TLSOptions(trustRootsFile: "ca.pem")
/// ```
public struct TLSOptions: Sendable, Hashable {
    /// PEM file with the certificate chain this side presents (required for servers).
    public var certificateChainFile: String?
    /// PEM file with the private key for ``certificateChainFile``.
    public var privateKeyFile: String?
    /// PEM file with the CA certificates a client trusts; `nil` trusts the system's roots.
    public var trustRootsFile: String?
    /// Whether a client checks that the server certificate names the host it connects to.
    /// The chain itself is always verified.
    public var verifiesHostname: Bool

    /// Creates TLS options.
    public init(
        certificateChainFile: String? = nil, privateKeyFile: String? = nil,
        trustRootsFile: String? = nil, verifiesHostname: Bool = true
    ) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.trustRootsFile = trustRootsFile
        self.verifiesHostname = verifiesHostname
    }

    func makeServerContext() throws -> NIOSSLContext {
        guard let chainFile = certificateChainFile, let keyFile = privateKeyFile else {
            throw TLSOptionsError.serverNeedsCertificate
        }
        let chain = try NIOSSLCertificate.fromPEMFile(chainFile).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }

    func makeClientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let trustRootsFile { configuration.trustRoots = .file(trustRootsFile) }
        if !verifiesHostname { configuration.certificateVerification = .noHostnameVerification }
        if let chainFile = certificateChainFile, let keyFile = privateKeyFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(chainFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// Why TLS options cannot be used.
public enum TLSOptionsError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A server was given TLS options without a certificate chain and private key.
    case serverNeedsCertificate

    public var description: String {
        switch self {
        case .serverNeedsCertificate:
            "a TLS server needs both a certificate chain (--tls-cert) and a private key (--tls-key)"
        }
    }
}
