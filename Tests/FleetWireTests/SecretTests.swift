import Foundation
import Testing

@testable import FleetWire

@Suite("Secrets and credentials")
struct SecretTests {
    private func temporaryFile(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-secret-\(UUID())").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func noSecretRefusesUnlessInsecure() throws {
        #expect(throws: SecretError.missing) { try Credentials.resolve(secretFile: nil, insecure: false, environment: [:]) }
        #expect(try Credentials.resolve(secretFile: nil, insecure: true, environment: [:]) == .insecure)
        #expect(SecretError.missing.description.contains("--secret-file"))
    }

    @Test func environmentVariable() throws {
        let credentials = try Credentials.resolve(secretFile: nil, insecure: false, environment: ["FLEET_SECRET": "abc"])
        #expect(credentials == .secret(try Secret(Array("abc".utf8))))
        #expect(throws: SecretError.empty(source: "FLEET_SECRET")) {
            try Credentials.resolve(secretFile: nil, insecure: false, environment: ["FLEET_SECRET": ""])
        }
    }

    @Test func fileWinsOverEnvironmentAndDropsTheNewline() throws {
        let path = try temporaryFile("from-file\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let credentials = try Credentials.resolve(secretFile: path, insecure: false, environment: ["FLEET_SECRET": "env"])
        #expect(credentials == .secret(try Secret(Array("from-file".utf8))))
    }

    @Test func unreadableFile() {
        #expect(throws: SecretError.unreadable(path: "/nonexistent/secret")) {
            try Credentials.resolve(secretFile: "/nonexistent/secret", insecure: false, environment: [:])
        }
    }

    @Test func descriptionNeverShowsTheSecret() throws {
        let secret = try Secret(Array("hunter2".utf8))
        #expect(!"\(secret)".contains("hunter2"))
    }
}
