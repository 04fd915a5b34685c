import FleetWire
import NIOCore
import NIOPosix

extension FleetActorSystem {
    /// How a ``FleetActorSystem`` authenticates, times out calls, and runs the calls it serves.
    ///
    /// ```swift
    /// let credentials = try Credentials.resolve(secretFile: "/etc/fleet/secret", insecure: false)
    /// var configuration = FleetActorSystem.Configuration(credentials: credentials)
    /// configuration.callTimeout = .seconds(5)
    /// let system = FleetActorSystem(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// Credentials, TLS, size limits and handshake timeouts of every connection.
        public var wire: WireConfiguration
        /// The deadline of each remote call, unless the caller sets one with
        /// ``RemoteCall/with(timeout:isolation:_:)`` (default 30 s, like rpyc's
        /// `sync_request_timeout`).
        public var callTimeout: Duration
        /// How often an idle connection is probed; a peer silent for three intervals is taken for
        /// dead and its calls fail with ``RemoteCallError/connectionLost(reason:)``. `nil`
        /// turns the probe off (default 5 s).
        public var heartbeatInterval: Duration?
        /// Where the calls that peers make run (default ``CallExecution/eventLoop``).
        public var callExecution: CallExecution
        /// The event loops that carry the connections.
        public var eventLoopGroup: any EventLoopGroup

        /// Creates a configuration from a wire configuration; the rest has defaults.
        public init(
            wire: WireConfiguration,
            callTimeout: Duration = .seconds(30),
            heartbeatInterval: Duration? = .seconds(5),
            callExecution: CallExecution = .eventLoop,
            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
        ) {
            self.wire = wire
            self.callTimeout = callTimeout
            self.heartbeatInterval = heartbeatInterval
            self.callExecution = callExecution
            self.eventLoopGroup = eventLoopGroup
        }

        /// Creates a configuration with `credentials` and defaults for everything else.
        public init(credentials: Credentials) {
            self.init(wire: WireConfiguration(credentials: credentials))
        }
    }

    /// Where a distributed function called by a peer starts running.
    public enum CallExecution: Sendable, Hashable {
        /// On the event loop of the connection the call came in on, preferred as the task's
        /// executor: no thread hop between reading the call and sending the reply — the lowest
        /// latency. Work that blocks or computes for long holds up that loop's other connections;
        /// move such work off it (for example `Task.detached` or a dedicated thread).
        case eventLoop
        /// On Swift's global concurrent executor: one more thread hop per call, and a long
        /// computation never holds up a connection.
        case globalConcurrent
    }
}
