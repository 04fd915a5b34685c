import Testing

@testable import FleetWire

@Suite("Endpoint parsing")
struct EndpointTests {
    @Test func validForms() throws {
        #expect(try Endpoint("localhost:60000") == Endpoint(host: "localhost", port: 60000))
        #expect(try Endpoint("10.1.2.3:1") == Endpoint(host: "10.1.2.3", port: 1))
        #expect(try Endpoint("[::1]:7000") == Endpoint(host: "::1", port: 7000))
        #expect(try Endpoint("[fe80::1%eth0]:80") == Endpoint(host: "fe80::1%eth0", port: 80))
        #expect(try Endpoint(":0") == Endpoint(host: "", port: 0))
        #expect(try Endpoint(" node-1:65535 \n") == Endpoint(host: "node-1", port: 65535))
    }

    @Test func descriptionRoundTrips() throws {
        for text in ["localhost:1", "[::1]:2", "example.org:60000"] {
            #expect(try Endpoint(text).description == text)
        }
    }

    @Test(arguments: [
        ("", "empty"),
        ("localhost", "missing ':PORT'"),
        ("localhost:", "port is missing"),
        ("localhost:http", "not a number"),
        ("localhost:-1", "not a number"),
        ("localhost:65536", "out of range"),
        ("::1:80", "needs brackets"),
        ("[::1:80", "missing ']'"),
        ("[::1]80", "expected ':PORT'"),
        ("[]:80", "IPv6 address is empty"),
    ])
    func invalidForms(text: String, reason: String) {
        do {
            _ = try Endpoint(text)
            Issue.record("parsed '\(text)'")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
            #expect(error.description.contains("invalid endpoint"))
        }
    }

    @Test func loopback() throws {
        for text in ["127.0.0.1:1", "127.8.9.10:1", "localhost:1", "[::1]:1"] { #expect(try Endpoint(text).isLoopback) }
        for text in ["0.0.0.0:1", "10.0.0.1:1", "example.org:1", "[::]:1", "127.0.0:1", ":1"] { #expect(try !Endpoint(text).isLoopback) }
    }
}
