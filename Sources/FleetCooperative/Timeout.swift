/// The error an operation of a ``CooperativeLoop`` throws when its timeout passes first.
///
/// Every suspending operation — ``TCPListener/accept(timeout:)``, ``TCPConnection/recv(max:timeout:)``,
/// ``CooperativeQueue/get(timeout:)`` and the rest — takes an optional `timeout`; when it passes,
/// the operation stops waiting and throws `Timeout`. The socket stays open and usable.
public struct Timeout: Error, Hashable, CustomStringConvertible {
    /// The operation that timed out, e.g. `"recv"`.
    public var operation: String
    /// The timeout it was given.
    public var after: Duration

    /// Creates the error for `operation`, which timed out after `after`.
    public init(operation: String, after: Duration) {
        self.operation = operation
        self.after = after
    }

    /// `"recv timed out after 0.5 seconds"`.
    public var description: String { "\(operation) timed out after \(after)" }
}
