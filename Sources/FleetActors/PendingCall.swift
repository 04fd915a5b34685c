import NIOCore

/// A call this side made and still waits for; lives in its connection's table of calls.
///
/// `@unchecked Sendable`: the caller creates it and hands it to the connection's event loop;
/// from then on every mutable field is read and written only on that event loop (the
/// connection handler's methods, which NIO runs there).
final class PendingCall: @unchecked Sendable {
    let id: UInt64
    let timeout: Duration
    private var continuation: UnsafeContinuation<ByteBuffer, any Error>?
    /// When the call times out; set when it starts.
    private(set) var deadline = NIODeadline.distantFuture
    /// Set when the caller gave up before the call was started on the event loop.
    var abandoned = false

    init(id: UInt64, timeout: Duration) {
        self.id = id
        self.timeout = timeout
    }

    /// Starts waiting: keeps the continuation and sets the deadline.
    func arm(_ continuation: UnsafeContinuation<ByteBuffer, any Error>, deadline: NIODeadline) {
        self.continuation = continuation
        self.deadline = deadline
    }

    /// Resumes the caller with the reply; later completions are ignored.
    func succeed(_ reply: ByteBuffer) {
        continuation.take()?.resume(returning: reply)
    }

    /// Resumes the caller with `error`; later completions are ignored.
    func fail(_ error: any Error) {
        continuation.take()?.resume(throwing: error)
    }
}
