import NIOCore
import NIOPosix

/// Plain SwiftNIO on loopback, no Fleet layers: what an event-loop round trip costs here, between
/// the raw blocking-socket round trip and a remote call.
enum NIOEcho {
    /// Starts an echo server on a free loopback port; returns the port.
    static func startServer(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Int {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return channel.localAddress?.port ?? 0
    }

    /// Times `count` round trips of `size` bytes, each sent from the event loop as soon as the
    /// previous answer is read; returns the seconds of each.
    static func roundTrips(port: Int, count: Int, size: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> [Double] {
        let loop = group.next()
        let done = loop.makePromise(of: [Double].self)
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Pinger(count: count, size: size, done: done))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        defer { channel.close(promise: nil) }
        return try await done.futureResult.get()
    }

    private final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }
    }

    private final class Pinger: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let count: Int
        let size: Int
        let done: EventLoopPromise<[Double]>
        var samples: [Double] = []
        var pending = 0
        var sentAt = ContinuousClock.now

        init(count: Int, size: Int, done: EventLoopPromise<[Double]>) {
            self.count = count
            self.size = size
            self.done = done
        }

        func channelActive(context: ChannelHandlerContext) {
            send(context: context)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending -= unwrapInboundIn(data).readableBytes
            guard pending == 0 else { return }
            samples.append((ContinuousClock.now - sentAt).inSeconds)
            if samples.count == count {
                done.succeed(samples)
            } else {
                send(context: context)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.fail(ChannelError.ioOnClosedChannel)
        }

        private func send(context: ChannelHandlerContext) {
            pending = size
            sentAt = .now
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(repeating: 7, count: size)), promise: nil)
        }
    }
}
