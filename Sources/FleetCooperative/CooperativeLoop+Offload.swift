import NIOPosix

extension CooperativeLoop {
    /// Runs `work` on a thread of NIO's shared thread pool and resumes the calling task on the
    /// loop with its result, while the loop keeps running its other tasks.
    ///
    /// Use it for anything that would hold the loop's thread: a blocking system call or library
    /// call, a long computation. It is the counterpart of releasing the GIL around a C call
    /// (`Py_BEGIN_ALLOW_THREADS`) — or of asyncio's `loop.run_in_executor` — with no GIL to
    /// take back afterwards.
    ///
    /// - Parameter work: The work; it runs on another thread, so it must be `Sendable`.
    /// - Returns: What `work` returned.
    /// - Throws: What `work` threw.
    public func offload<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await NIOThreadPool.singleton.runIfActive(work)
    }
}
