import Crypto
import Foundation
import Synchronization

/// A program as nodes receive it: an executable's bytes and their SHA-256, read once, when a
/// node first needs them. By default the running executable (a job server ships itself).
final class ShippedProgram: Sendable {
    private let cached = Mutex<(digest: String, bytes: [UInt8])?>(nil)
    /// The executable's path; `nil` for the running one.
    private let path: String?

    init(path: String? = nil) {
        self.path = path
    }

    func digest() throws -> String { try load().digest }

    func bytes() throws -> [UInt8] { try load().bytes }

    private func load() throws -> (digest: String, bytes: [UInt8]) {
        try cached.withLock { cached in
            if let cached { return cached }
            let path = try path ?? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            cached = (digest, bytes)
            return (digest, bytes)
        }
    }
}
