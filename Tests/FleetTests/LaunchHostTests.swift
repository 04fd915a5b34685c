import Fleet
import Testing

@Suite("LaunchHost parsing (fleet launch --hosts)")
struct LaunchHostTests {
    @Test func hostsSlotsAndPortsParse() throws {
        #expect(try LaunchHost("local") == .local())
        #expect(try LaunchHost("local:3") == .local(slots: 3))
        #expect(try LaunchHost("node-1") == .node(Endpoint(host: "node-1", port: 60000)))
        #expect(try LaunchHost("node-1:4") == .node(Endpoint(host: "node-1", port: 60000), slots: 4))
        #expect(try LaunchHost("node-1:4", nodePort: 7000) == .node(Endpoint(host: "node-1", port: 7000), slots: 4))
        #expect(try LaunchHost("10.0.0.2:61000:8") == .node(Endpoint(host: "10.0.0.2", port: 61000), slots: 8))
        #expect(try LaunchHost("[fe80::1]:2") == .node(Endpoint(host: "fe80::1", port: 60000), slots: 2))
        #expect(try LaunchHost("[::1]:61000:2") == .node(Endpoint(host: "::1", port: 61000), slots: 2))
        #expect(try LaunchHost(" node-1:4 ").description == "node-1:60000:4")
        #expect(LaunchHost.local(slots: 2).description == "local:2")
    }

    @Test func malformedHostsSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("", "the host is empty"),
            (":4", "the host is empty"),
            ("node-1:four", "'four' is not a number"),
            ("node-1:0", "at least 1 slot"),
            ("node-1:60000", "for a node's port write HOST:PORT:SLOTS"),
            ("node-1:70000:2", "port 70000 is outside 1...65535"),
            ("node-1:1:2:3", "expected HOST, HOST:SLOTS or HOST:PORT:SLOTS"),
            ("local:60000:2", "'local' takes slots only"),
            ("[fe80::1", "missing ']'"),
        ]
        for (text, reason) in cases {
            do {
                let host = try LaunchHost(text)
                Issue.record("'\(text)' parsed as \(host)")
            } catch {
                #expect(error.description.contains(reason), "'\(text)': \(error)")
            }
        }
    }
}
