import Logging
import NIOCore

/// Runs the ``Handshake`` at the start of a connection, then gets out of the way.
///
/// Sits after the frame codec. Until the handshake succeeds no frame passes it; afterwards it
/// passes every frame on and removes itself. It completes ``authenticated`` with the peer's
/// ``PeerInfo``, or fails it with a ``HandshakeError`` or ``WireError`` and closes the channel —
/// after sending a reject frame with the reason where the protocol allows.
final class HandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Frame
    typealias InboundOut = Frame
    typealias OutboundOut = Frame

    enum Role {
        case client
        case server
    }

    private enum State {
        case idle
        case clientAwaitingChallenge(hello: [UInt8])
        case clientAwaitingWelcome(transcript: [UInt8], server: PeerInfo)
        case serverAwaitingHello
        case serverAwaitingProof(transcript: [UInt8], client: PeerInfo)
        case done
        case failed
    }

    private let role: Role
    private let credentials: Credentials
    private let localPeer: PeerInfo
    private let timeout: TimeAmount
    private let logger: Logger
    private var state = State.idle
    private var timeoutTask: Scheduled<Void>?
    private let promise: EventLoopPromise<PeerInfo>
    private let payloadLimit: PayloadLimit?
    private let authenticatedPayloadLimit: Int

    /// Completes when the peer is authenticated; fails when the handshake fails.
    var authenticated: EventLoopFuture<PeerInfo> { promise.futureResult }

    /// Fails ``authenticated`` when the handler never made it into a pipeline.
    func abandon(_ error: any Error) {
        promise.fail(error)
    }

    init(
        role: Role, credentials: Credentials, localPeer: PeerInfo, timeout: TimeAmount,
        logger: Logger, eventLoop: any EventLoop,
        payloadLimit: PayloadLimit? = nil, authenticatedPayloadLimit: Int = Frame.defaultMaximumPayloadSize
    ) {
        self.payloadLimit = payloadLimit
        self.authenticatedPayloadLimit = authenticatedPayloadLimit
        self.role = role
        self.credentials = credentials
        self.localPeer = localPeer
        self.timeout = timeout
        self.logger = logger
        self.promise = eventLoop.makePromise()
    }

    private var authentication: Handshake.Authentication {
        switch credentials {
        case .secret: .hmacSHA256
        case .insecure: .none
        }
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            handler.fail(context: context, HandshakeError.timedOut(seconds: Double(handler.timeout.nanoseconds) / 1e9))
        }
        if context.channel.isActive { start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        if case .done = state { return }
        promise.fail(HandshakeError.connectionClosed)
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .done: break
        case .failed: break
        default: fail(context: context, HandshakeError.connectionClosed)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .done = state {
            context.fireErrorCaught(error)
        } else {
            fail(context: context, error)
        }
    }

    private func start(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        switch role {
        case .server:
            state = .serverAwaitingHello
        case .client:
            guard let hello = send(context: context, .hello, Handshake.Hello(
                protocolName: Handshake.protocolName, version: .current, nonce: Handshake.makeNonce(),
                authentication: authentication, peer: localPeer
            )) else { return }
            state = .clientAwaitingChallenge(hello: hello)
        }
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            switch state {
            case .done:
                context.fireChannelRead(data)
            case .failed, .idle:
                break
            case .serverAwaitingHello:
                try serverReceivedHello(context: context, frame)
            case let .serverAwaitingProof(transcript, client):
                try serverReceivedProof(context: context, frame, transcript, client)
            case let .clientAwaitingChallenge(hello):
                try clientReceivedChallenge(context: context, frame, hello)
            case let .clientAwaitingWelcome(transcript, server):
                try clientReceivedWelcome(context: context, frame, transcript, server)
            }
        } catch {
            fail(context: context, error)
        }
    }

    private func serverReceivedHello(context: ChannelHandlerContext, _ frame: Frame) throws {
        let hello = try expect(frame, .hello, Handshake.Hello.self)
        guard hello.protocolName == Handshake.protocolName else {
            return refuse(context: context, "not a Fleet client (protocol '\(hello.protocolName)')")
        }
        guard hello.version.isCompatible(with: .current) else {
            return refuse(context: context,
                "protocol version mismatch: client speaks fleet/\(hello.version), server speaks fleet/\(ProtocolVersion.current)")
        }
        guard hello.nonce.count == Handshake.nonceSize else {
            return refuse(context: context, "malformed hello: nonce of \(hello.nonce.count) bytes")
        }
        switch (hello.authentication, credentials) {
        case (.none, .secret):
            return refuse(context: context,
                "this server requires a shared secret: set FLEET_SECRET or pass --secret-file PATH")
        case (.hmacSHA256, .insecure):
            return refuse(context: context,
                "this server runs without authentication (--insecure); the client has a secret, so it refuses to trust it")
        default:
            break
        }
        guard let challenge = send(context: context, .challenge, Handshake.Challenge(
            nonce: Handshake.makeNonce(), authentication: authentication, peer: localPeer
        )) else { return }
        state = .serverAwaitingProof(transcript: frame.payloadBytes + challenge, client: hello.peer)
    }

    private func serverReceivedProof(
        context: ChannelHandlerContext, _ frame: Frame,
        _ transcript: [UInt8], _ client: PeerInfo
    ) throws {
        let proof = try expect(frame, .proof, Handshake.Proof.self)
        var welcome = Handshake.Welcome(mac: [])
        if case let .secret(secret) = credentials {
            guard Handshake.isValid(proof.mac, secret, side: .client, transcript: transcript) else {
                return refuse(context: context,
                    "authentication failed: the client's secret does not match this server's")
            }
            welcome.mac = Handshake.mac(secret, side: .server, transcript: transcript)
        }
        send(context: context, .welcome, welcome)
        succeed(context: context, peer: client)
    }

    private func clientReceivedChallenge(
        context: ChannelHandlerContext, _ frame: Frame, _ hello: [UInt8]
    ) throws {
        let challenge = try expect(frame, .challenge, Handshake.Challenge.self)
        guard challenge.authentication == authentication else {
            throw HandshakeError.refused(reason:
                "the server's authentication (\(challenge.authentication.rawValue)) differs from the client's (\(authentication.rawValue))")
        }
        guard challenge.nonce.count == Handshake.nonceSize else {
            throw WireError.malformedPayload(.challenge, "nonce of \(challenge.nonce.count) bytes")
        }
        var proof = Handshake.Proof(mac: [])
        let transcript = hello + frame.payloadBytes
        if case let .secret(secret) = credentials {
            proof.mac = Handshake.mac(secret, side: .client, transcript: transcript)
        }
        state = .clientAwaitingWelcome(transcript: transcript, server: challenge.peer)
        send(context: context, .proof, proof)
    }

    private func clientReceivedWelcome(
        context: ChannelHandlerContext, _ frame: Frame,
        _ transcript: [UInt8], _ server: PeerInfo
    ) throws {
        let welcome = try expect(frame, .welcome, Handshake.Welcome.self)
        if case let .secret(secret) = credentials {
            guard Handshake.isValid(welcome.mac, secret, side: .server, transcript: transcript) else {
                throw HandshakeError.serverNotAuthenticated
            }
        }
        succeed(context: context, peer: server)
    }

    /// Decodes `frame` as `T` when it is of `kind`; a reject or error frame becomes the
    /// matching error, anything else a protocol error.
    private func expect<T: Decodable>(_ frame: Frame, _ kind: Frame.Kind, _ type: T.Type) throws -> T {
        switch frame.kind {
        case kind:
            return try frame.decode(type)
        case .reject:
            throw HandshakeError.rejected(reason: (try? frame.decode(Handshake.Reject.self).reason) ?? "no reason given")
        case .error:
            throw WireError.closedByPeer(reason: (try? frame.decode(String.self)) ?? "no reason given")
        default:
            throw WireError.unexpectedFrame(frame.kind, expected: "\(kind) (handshake)")
        }
    }

    // MARK: Outcomes

    /// Sends a handshake message and returns its payload bytes (for the transcript), or `nil`
    /// after failing the handshake when it cannot be encoded.
    @discardableResult
    private func send(context: ChannelHandlerContext, _ kind: Frame.Kind, _ message: some Encodable) -> [UInt8]? {
        do {
            let frame = try Frame(kind: kind, encoding: message)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            return frame.payloadBytes
        } catch {
            fail(context: context, error)
            return nil
        }
    }

    /// Refuses the peer: tells it why, logs it, and closes.
    private func refuse(context: ChannelHandlerContext, _ reason: String) {
        fail(context: context, HandshakeError.refused(reason: reason))
    }

    private func succeed(context: ChannelHandlerContext, peer: PeerInfo) {
        state = .done
        timeoutTask?.cancel()
        logger.debug("handshake complete", metadata: ["peer": "\(peer)"])
        // Frames after this one may be as large as the configuration allows.
        payloadLimit?.value = min(authenticatedPayloadLimit, Int(UInt32.max))
        promise.succeed(peer)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        switch state {
        case .done, .failed: return
        default: break
        }
        let wasServer = role == .server
        state = .failed
        timeoutTask?.cancel()
        let remote = context.channel.remoteAddress.map { "\($0)" } ?? "unknown"
        logger.warning("handshake failed", metadata: [
            "remote": "\(remote)", "role": "\(wasServer ? "server" : "client")", "reason": "\(error)",
        ])
        promise.fail(error)
        // Tell the peer why, where the protocol has a place for it, then close.
        let notice: Frame?
        switch error {
        case let HandshakeError.refused(reason) where wasServer:
            notice = try? Frame(kind: .reject, encoding: Handshake.Reject(reason: reason))
        case HandshakeError.rejected, HandshakeError.connectionClosed, WireError.closedByPeer:
            notice = nil
        default:
            notice = try? Frame(kind: .error, encoding: "\(error)")
        }
        guard context.channel.isActive else { return }
        if let notice {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(notice)).whenComplete { _ in
                loopBound.value.close(promise: nil)
            }
        } else {
            context.close(promise: nil)
        }
    }
}

extension Frame {
    /// The payload's readable bytes.
    var payloadBytes: [UInt8] { Array(payload.readableBytesView) }
}
