/// A host and a TCP port: where a Fleet server listens or a client connects.
///
/// Parses `host:port`, `[IPv6]:port` and `:port` (all interfaces' loopback is not implied: an
/// empty host means 0.0.0.0 when binding):
///
/// ```swift
/// let node = try Endpoint("worker-3:60000")
/// let local = try Endpoint("[::1]:7000")
/// ```
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host name or IP address, without brackets.
    public var host: String
    /// The TCP port; 0 asks the system for a free port when binding.
    public var port: Int

    /// Creates an endpoint from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[IPv6]:port` or `:port`.
    ///
    /// - Throws: ``EndpointError`` saying what is wrong with the text.
    public init(_ text: String) throws(EndpointError) {
        let text = text.trimmingWhitespace
        guard !text.isEmpty else { throw EndpointError(text, "it is empty; expected HOST:PORT") }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw EndpointError(text, "missing ']' after the IPv6 address")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw EndpointError(text, "expected ':PORT' after ']'")
            }
            portText = rest.dropFirst()
            guard !host.isEmpty else { throw EndpointError(text, "the IPv6 address is empty") }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw EndpointError(text, "missing ':PORT'")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw EndpointError(text, "an IPv6 address needs brackets, as in [::1]:\(portText)")
            }
        }
        guard !portText.isEmpty else { throw EndpointError(text, "the port is missing") }
        guard portText.allSatisfy(\.isASCIIDigit), let port = Int(portText) else {
            throw EndpointError(text, "the port '\(portText)' is not a number")
        }
        guard (0...65535).contains(port) else {
            throw EndpointError(text, "the port \(port) is out of range 0–65535")
        }
        self.init(host: String(host), port: port)
    }

    /// `host:port`, with brackets around an IPv6 address.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Whether the host is a loopback name or address (`localhost`, `127.0.0.0/8`, `::1`).
    public var isLoopback: Bool {
        let host = host.lowercased()
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        return ipv4Octets?.first == 127
    }

    /// The four octets when the host is a dotted IPv4 address, else `nil`.
    var ipv4Octets: [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        let octets = parts.compactMap { UInt8($0) }
        return parts.count == 4 && octets.count == 4 ? octets : nil
    }
}

/// Why a text is not an ``Endpoint``.
public struct EndpointError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text that was parsed.
    public var text: String
    /// What is wrong with it.
    public var reason: String

    init(_ text: String, _ reason: String) {
        self.text = text
        self.reason = reason
    }

    public var description: String { "invalid endpoint '\(text)': \(reason)" }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
