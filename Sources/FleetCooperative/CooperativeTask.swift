import Synchronization

/// A task of a ``CooperativeLoop``: its result, and a way to cancel it.
///
/// Returned by ``CooperativeLoop/add(_:)``. A parent task that awaits ``value`` gets the child's
/// result or rethrows its error; if the parent is cancelled while it waits, the child is
/// cancelled too.
public struct CooperativeTask<Success: Sendable>: Sendable {
    let task: Task<Success, any Error>
    let record: TaskRecord

    /// The task's result; rethrows the task's error. Awaiting it marks the task's error as
    /// handled, so ``CooperativeLoop/run()`` does not rethrow it.
    public var value: Success {
        get async throws {
            record.observe()
            return try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        }
    }

    /// Cancels the task: the operation it waits on ends with `CancellationError`, and a socket it
    /// waited on is closed.
    public func cancel() {
        task.cancel()
    }

    /// Whether the task has been cancelled.
    public var isCancelled: Bool { task.isCancelled }
}

/// Whether someone awaited a task's value, and the error it failed with.
final class TaskRecord: Sendable {
    private let observed = Atomic<Bool>(false)
    private let failure = Mutex<(any Error)?>(nil)

    func observe() { observed.store(true, ordering: .relaxed) }

    var isObserved: Bool { observed.load(ordering: .relaxed) }

    var error: (any Error)? {
        get { failure.withLock { $0 } }
        set { failure.withLock { $0 = newValue } }
    }
}
