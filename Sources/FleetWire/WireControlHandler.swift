import Logging
import NIOCore

/// The connection's own business after the handshake: answers a ``Frame/Kind/ping`` with a
/// ``Frame/Kind/pong`` carrying the same payload, and reports protocol errors — logs them, tells
/// the peer in an error frame, and closes the connection. The error still travels on, so the
/// connection's owner sees it too.
final class WireControlHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Frame
    typealias InboundOut = Frame
    typealias OutboundOut = Frame

    private let logger: Logger
    private var reported = false

    init(logger: Logger) {
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.kind == .ping else { return context.fireChannelRead(data) }
        context.writeAndFlush(wrapOutboundOut(Frame(kind: .pong, payload: frame.payload)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        defer { context.fireErrorCaught(error) }
        guard !reported else { return }
        reported = true
        let remote = context.channel.remoteAddress.map { "\($0)" } ?? "unknown"
        guard let wireError = error as? WireError else {
            logger.debug("connection error", metadata: ["remote": "\(remote)", "error": "\(error)"])
            context.close(promise: nil)
            return
        }
        logger.warning("protocol error; closing the connection", metadata: [
            "remote": "\(remote)", "error": "\(wireError)",
        ])
        switch wireError {
        case .closedByPeer, .connectionClosed, .truncatedFrame:
            context.close(promise: nil)
        default:
            guard let notice = try? Frame(kind: .error, encoding: wireError.description) else {
                context.close(promise: nil)
                return
            }
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(notice)).whenComplete { _ in
                loopBound.value.close(promise: nil)
            }
        }
    }
}
