import NIOCore

/// Where a connection's ``FrameDecoder`` offers each frame before the channel's pipeline: a
/// layer above FleetWire that takes most frames of a connection (FleetMPI's rank messages) takes
/// them with one call, not through the pipeline's handlers, whose typed hops each wrap the frame
/// in an `NIOAny` (a heap box and several dynamic casts).
///
/// Frames the sink declines go through the pipeline as before, in order: the decoder hands the
/// pipeline one frame at a time and offers the next to the sink only once the pipeline is done
/// with it. Set ``take`` only once the connection is authenticated (from a handler after
/// FleetWire's, which sees no frame before then), so that nothing reaches the sink that the
/// handshake would have refused.
///
/// Not thread-safe: used on the connection's event loop.
package final class FrameSink {
    /// Takes a decoded frame; returns `false` to leave it to the pipeline. `nil`: every frame
    /// goes through the pipeline.
    package var take: ((Frame) -> Bool)?

    package init() {}
}
