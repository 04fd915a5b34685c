import NIOCore
import NIOPosix
import Testing

@testable import FleetWire

@Suite("Authenticated connections on loopback")
struct ConnectionTests {
    @Test func rightSecretConnectsAndEchoes() async throws {
        let server = configuration(try secret("s3cret"), name: "server-under-test")
        let client = configuration(try secret("s3cret"), name: "client-under-test")
        try await withEchoServer(server) { (endpoint: Endpoint) async throws in
            let seen = try await WireClient.withConnection(to: endpoint, configuration: client) { connection in
                // Many frames sent at once right after the handshake: none may be lost.
                let frames = try (0..<1000).map { try Frame(kind: .message, encoding: $0) }
                try await connection.send(contentsOf: frames)
                var received = [Int]()
                for try await frame in connection.inbound {
                    received.append(try frame.decode(Int.self))
                    if received.count == 1000 { break }
                }
                #expect(received == Array(0..<1000))
                return connection.peer
            }
            #expect(seen.name == "server-under-test")
            #expect(seen.protocolVersion == .current)
        }
    }

    @Test func pingsAreAnsweredByTheConnectionItself() async throws {
        let credentials = try secret("s")
        // A server that never reads: the pong must come from the connection, not the handler.
        let listener = try await WireListener.bind(to: loopback, configuration: configuration(credentials))
        let server = Task { try await listener.run { _ in try await Task.sleep(for: .seconds(30)) } }
        defer { server.cancel() }
        let pong = try await withDeadline {
            try await WireClient.withConnection(to: listener.localEndpoint, configuration: configuration(credentials)) { connection in
                try await connection.send(Frame(kind: .ping, payload: ByteBuffer(string: "probe-7")))
                var frames = connection.inbound.makeAsyncIterator()
                return try await frames.next()
            }
        }
        #expect(pong == Frame(kind: .pong, payload: ByteBuffer(string: "probe-7")))
        await listener.close()
    }

    @Test func wrongSecretIsRejectedWithAReasonAndTheServerKeepsServing() async throws {
        let logs = LogRecorder()
        let server = configuration(try secret("right"), logs: logs)
        try await withEchoServer(server) { (endpoint: Endpoint) async throws in
            await #expect {
                try await echo("x", to: endpoint, configuration(secret("wrong")))
            } throws: { error in
                guard case let HandshakeError.rejected(reason) = error else { return false }
                return reason.contains("secret does not match")
            }
            #expect(logs.contains("handshake failed"))
            #expect(logs.contains("secret does not match"))
            let good = configuration(try secret("right"))
            #expect(try await echo("still serving", to: endpoint, good) == "still serving")
        }
    }

    @Test func clientWithoutSecretIsRejected() async throws {
        _ = try await withEchoServer(configuration(try secret("right"))) { (endpoint: Endpoint) async throws in
            await #expect {
                try await echo("x", to: endpoint, configuration(.insecure))
            } throws: { error in
                guard case let HandshakeError.rejected(reason) = error else { return false }
                return reason.contains("requires a shared secret")
            }
        }
    }

    @Test func insecureServerWorksOnLoopbackOnlyAndRefusesSecretClients() async throws {
        try await withEchoServer(configuration(.insecure)) { (endpoint: Endpoint) async throws in
            let open = configuration(.insecure)
            #expect(try await echo("open", to: endpoint, open) == "open")
            await #expect {
                try await echo("x", to: endpoint, configuration(secret("s")))
            } throws: { error in
                guard case let HandshakeError.rejected(reason) = error else { return false }
                return reason.contains("without authentication")
            }
        }
        await #expect(throws: SecretError.insecureRequiresLoopback(host: "0.0.0.0")) {
            _ = try await WireListener.bind(to: Endpoint(host: "0.0.0.0", port: 0), configuration: configuration(.insecure))
        }
    }

    @Test func versionMismatchIsRejectedWithAReason() async throws {
        let logs = LogRecorder()
        try await withEchoServer(configuration(try secret("s"), logs: logs)) { (endpoint: Endpoint) async throws in
            let reason = try await withRawFrameConnection(to: endpoint) { inbound, outbound in
                let hello = Handshake.Hello(
                    protocolName: "fleet", version: ProtocolVersion(major: 2, minor: 0),
                    nonce: Handshake.makeNonce(), authentication: .hmacSHA256, peer: .local())
                try await outbound.write(Frame(kind: .hello, encoding: hello))
                for try await frame in inbound where frame.kind == .reject {
                    return try frame.decode(Handshake.Reject.self).reason
                }
                return "no reject frame"
            }
            #expect(reason.contains("version mismatch"))
            #expect(reason.contains("fleet/2.0"))
            #expect(logs.contains("version mismatch"))
        }
    }

    @Test func wrongProtocolIsRejected() async throws {
        try await withEchoServer(configuration(try secret("s"))) { (endpoint: Endpoint) async throws in
            let reason = try await withRawFrameConnection(to: endpoint) { inbound, outbound in
                let hello = Handshake.Hello(
                    protocolName: "rpyc", version: .current,
                    nonce: Handshake.makeNonce(), authentication: .hmacSHA256, peer: .local())
                try await outbound.write(Frame(kind: .hello, encoding: hello))
                for try await frame in inbound where frame.kind == .reject {
                    return try frame.decode(Handshake.Reject.self).reason
                }
                return "no reject frame"
            }
            #expect(reason.contains("not a Fleet client"))
        }
    }

    @Test func framesBeforeTheHandshakeAreRefused() async throws {
        try await withEchoServer(configuration(try secret("s"))) { (endpoint: Endpoint) async throws in
            let reason = try await withRawFrameConnection(to: endpoint) { inbound, outbound in
                try await outbound.write(Frame(kind: .message, encoding: "let me in"))
                for try await frame in inbound where frame.kind == .error {
                    return try frame.decode(String.self)
                }
                return "no error frame"
            }
            #expect(reason.contains("unexpected message frame"))
        }
    }

    @Test func garbageBytesCloseOnlyThatConnection() async throws {
        let logs = LogRecorder()
        let credentials = try secret("s")
        try await withEchoServer(configuration(credentials, logs: logs)) { (endpoint: Endpoint) async throws in
            // A healthy connection stays open across the garbage on another one.
            try await WireClient.withConnection(to: endpoint, configuration: configuration(credentials)) { healthy in
                let received = try await withRawConnection(to: endpoint) { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
                    return try await drain(inbound)
                }
                // The server said why before closing: an error frame naming the bad kind.
                var reply = received
                #expect(reply.readInteger(as: UInt8.self) == Frame.Kind.error.rawValue)
                #expect(String(buffer: reply).contains("unknown frame kind 71"))
                #expect(logs.contains("unknown frame kind 71"))

                try await healthy.send(Frame(kind: .message, encoding: "alive"))
                var frames = healthy.inbound.makeAsyncIterator()
                #expect(try await frames.next()?.decode(String.self) == "alive")
            }
            let fresh = configuration(credentials)
            #expect(try await echo("new client", to: endpoint, fresh) == "new client")
        }
    }

    @Test func oversizeFrameAfterTheHandshakeIsReportedToThePeer() async throws {
        var serverConfiguration = configuration(try secret("s"))
        serverConfiguration.maximumPayloadSize = 1024
        var clientConfiguration = configuration(try secret("s"))
        clientConfiguration.maximumPayloadSize = 1 << 20
        let server = serverConfiguration, client = clientConfiguration
        try await withEchoServer(server) { (endpoint: Endpoint) async throws in
            await #expect {
                try await WireClient.withConnection(to: endpoint, configuration: client) { connection in
                    try await connection.send(Frame(kind: .message, payload: ByteBuffer(repeating: 1, count: 4096)))
                    for try await _ in connection.inbound {}
                }
            } throws: { error in
                guard case let WireError.closedByPeer(reason) = error else { return false }
                return reason.contains("exceeds the limit of 1024 bytes")
            }
            #expect(try await echo("fine", to: endpoint, server) == "fine")
        }
    }

    @Test func sendingAnOversizeFrameThrowsInsteadOfVanishing() async throws {
        var clientConfiguration = configuration(try secret("s"))
        clientConfiguration.maximumPayloadSize = 1024
        let client = clientConfiguration
        try await withEchoServer(configuration(try secret("s"))) { (endpoint: Endpoint) async throws in
            try await WireClient.withConnection(to: endpoint, configuration: client) { connection in
                await #expect(throws: WireError.frameTooLarge(size: 2048, limit: 1024)) {
                    try await connection.send(Frame(kind: .message, payload: ByteBuffer(repeating: 0, count: 2048)))
                }
                // The connection is still usable.
                try await connection.send(Frame(kind: .message, encoding: "small"))
                var frames = connection.inbound.makeAsyncIterator()
                #expect(try await frames.next()?.decode(String.self) == "small")
            }
        }
    }

    @Test func unauthenticatedPeersCannotSendLargeFrames() async throws {
        try await withEchoServer(configuration(try secret("s"))) { (endpoint: Endpoint) async throws in
            let reason = try await withRawConnection(to: endpoint) { inbound, outbound in
                var header = ByteBuffer()
                header.writeInteger(Frame.Kind.hello.rawValue)
                header.writeInteger(UInt32(1 << 20))               // 1 MiB "hello"
                try await outbound.write(header)
                var reply = try await drain(inbound)
                _ = reply.readBytes(length: Frame.headerSize)
                return String(buffer: reply)
            }
            #expect(reason.contains("exceeds the limit of 65536 bytes"))
        }
    }

    @Test func silentClientTimesOut() async throws {
        let logs = LogRecorder()
        var server = configuration(try secret("s"), logs: logs)
        server.handshakeTimeout = .milliseconds(200)
        try await withEchoServer(server) { (endpoint: Endpoint) async throws in
            _ = try await withRawConnection(to: endpoint) { inbound, _ in try await drain(inbound) }
            #expect(logs.contains("timed out"))
        }
    }

    @Test func clientDetectsAServerThatCannotProveTheSecret() async throws {
        // An impostor that goes through the motions without knowing the secret.
        let impostor = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(FrameDecoder()), FrameEncoder()])
                    return try NIOAsyncChannel<Frame, Frame>(wrappingChannelSynchronously: channel)
                }
            }
        let endpoint = Endpoint(host: "127.0.0.1", port: impostor.channel.localAddress!.port!)
        let serving = Task {
            try await impostor.executeThenClose { connections in
                for try await connection in connections {
                    try await connection.executeThenClose { inbound, outbound in
                        for try await frame in inbound {
                            switch frame.kind {
                            case .hello:
                                try await outbound.write(Frame(kind: .challenge, encoding: Handshake.Challenge(
                                    nonce: Handshake.makeNonce(), authentication: .hmacSHA256, peer: .local(name: "impostor"))))
                            case .proof:
                                try await outbound.write(Frame(kind: .welcome, encoding: Handshake.Welcome(mac: [UInt8](repeating: 0, count: 32))))
                            default:
                                break
                            }
                        }
                    }
                    return
                }
            }
        }
        await #expect(throws: HandshakeError.serverNotAuthenticated) {
            try await withDeadline { try await echo("x", to: endpoint, configuration(secret("s"))) }
        }
        try? await impostor.channel.close()
        _ = await serving.result
    }

    @Test func listenerRunsConnectionsConcurrently() async throws {
        let credentials = try secret("s")
        try await withEchoServer(configuration(credentials)) { (endpoint: Endpoint) async throws in
            try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<20 { group.addTask { try await echo("client \(i)", to: endpoint, configuration(credentials)) } }
                var replies = Set<String>()
                for try await reply in group { replies.insert(reply) }
                #expect(replies == Set((0..<20).map { "client \($0)" }))
            }
        }
    }
}

@Suite("TLS under the handshake")
struct TLSTests {
    private func tlsServer(_ logs: LogRecorder = LogRecorder()) throws -> WireConfiguration {
        var server = configuration(try secret("s"), logs: logs)
        server.tls = TLSOptions(certificateChainFile: fixture("server.pem"), privateKeyFile: fixture("server.key"))
        return server
    }

    @Test func tlsWithTrustedCertificate() async throws {
        try await withEchoServer(try tlsServer()) { (endpoint: Endpoint) async throws in
            var tlsClient = configuration(try secret("s"))
            tlsClient.tls = TLSOptions(trustRootsFile: fixture("ca.pem"))
            let client = tlsClient
            #expect(try await echo("over tls", to: endpoint, client) == "over tls")
            // The name form checks the certificate's DNS name.
            #expect(try await echo("by name", to: Endpoint(host: "localhost", port: endpoint.port), client) == "by name")
        }
    }

    @Test func tlsStillNeedsTheSecret() async throws {
        try await withEchoServer(try tlsServer()) { (endpoint: Endpoint) async throws in
            var tlsClient = configuration(try secret("wrong"))
            tlsClient.tls = TLSOptions(trustRootsFile: fixture("ca.pem"))
            let client = tlsClient
            await #expect(throws: HandshakeError.self) { try await echo("x", to: endpoint, client) }
        }
    }

    @Test func untrustedCertificateFails() async throws {
        try await withEchoServer(try tlsServer()) { (endpoint: Endpoint) async throws in
            var tlsClient = configuration(try secret("s"))
            tlsClient.tls = TLSOptions(trustRootsFile: fixture("other-ca.pem"))
            let client = tlsClient
            await #expect(throws: (any Error).self) { try await echo("x", to: endpoint, client) }
        }
    }

    @Test func plainClientAgainstTLSServerFailsAndTheServerKeepsServing() async throws {
        try await withEchoServer(try tlsServer()) { (endpoint: Endpoint) async throws in
            var plainClient = configuration(try secret("s"))
            plainClient.handshakeTimeout = .seconds(2)
            let plain = plainClient
            await #expect(throws: (any Error).self) { try await echo("x", to: endpoint, plain) }
            var tlsClient = configuration(try secret("s"))
            tlsClient.tls = TLSOptions(trustRootsFile: fixture("ca.pem"))
            let client = tlsClient
            #expect(try await echo("ok", to: endpoint, client) == "ok")
        }
    }

    @Test func tlsClientAgainstPlainServerFails() async throws {
        try await withEchoServer(configuration(try secret("s"))) { (endpoint: Endpoint) async throws in
            var tlsClient = configuration(try secret("s"))
            tlsClient.tls = TLSOptions(trustRootsFile: fixture("ca.pem"))
            let client = tlsClient
            await #expect(throws: (any Error).self) { try await echo("x", to: endpoint, client) }
        }
    }

    @Test func serverNeedsCertificateAndKey() async throws {
        var serverConfiguration = configuration(try secret("s"))
        serverConfiguration.tls = TLSOptions(trustRootsFile: fixture("ca.pem"))
        let server = serverConfiguration
        await #expect(throws: TLSOptionsError.serverNeedsCertificate) {
            _ = try await WireListener.bind(to: loopback, configuration: server)
        }
    }
}
