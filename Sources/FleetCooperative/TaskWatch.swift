import CFleetCooperative

/// One cancellation handler for a loop task's whole life, instead of one per wait.
///
/// A wait that installs its own handler (`withTaskCancellationHandler`) adds and removes a record
/// on the task under the task's status lock, every time — about a third of the loop's own time per
/// request in an echo server. ``CooperativeLoop/add(_:)`` instead installs one handler when the
/// task starts and binds this watch to the task-local ``current``; each wait of that task then only
/// notes its waiter id here, and the handler, when the task is cancelled, fails that wait — and
/// every later one — on the loop.
///
/// Child tasks inherit task-locals, so ``current`` may belong to an ancestor: a wait uses the
/// watch only when it is its own task's (``forCurrentTask(cachedIn:)``), and installs a handler of
/// its own otherwise.
final class TaskWatch: @unchecked Sendable {
    // @unchecked Sendable, and why it is safe: the mutable state is read and written on the loop
    // thread only — by waits (which run there), by `watching` (isolated to the loop), and by the
    // callback the cancellation handler posts there with `Reactor.execute`. The handler itself, on
    // whatever thread cancels the task, touches nothing but the reactor's thread-safe `execute`.

    /// The task this watch belongs to (compared, never dereferenced); nil once the task's body
    /// has returned, so that a later task at the same address never matches.
    @exclusivity(unchecked) private var task: UnsafeRawPointer?
    /// The waiter id of the wait in progress, or 0.
    @exclusivity(unchecked) var waiter: UInt64 = 0
    /// The cancellation handler's callback has run: every wait from now on fails at once.
    @exclusivity(unchecked) private(set) var cancelled = false

    @TaskLocal static var current: TaskWatch?

    private init(task: UnsafeRawPointer?) {
        self.task = task
    }

    /// The running task's own watch, if it has one: first the one `registration` last saw, else
    /// the task-local one. O(1).
    @inline(__always)
    static func forCurrentTask(cachedIn registration: Registration? = nil) -> TaskWatch? {
        guard let task = cfleet_current_task() else { return nil }
        if let cached = registration?.watch, cached.task == task { return cached }
        guard let watch = current, watch.task == task else { return nil }
        registration?.watch = watch
        return watch
    }

    /// Runs `operation` (on the loop) as a watched task.
    static func watching<Success>(
        _ reactor: Reactor, isolation: isolated (any Actor)? = #isolation,
        _ operation: () async throws -> Success
    ) async throws -> Success {
        let watch = TaskWatch(task: cfleet_current_task())
        defer { watch.task = nil }
        return try await withTaskCancellationHandler {
            try await $current.withValue(watch) { try await operation() }
        } onCancel: {
            reactor.execute {
                watch.cancelled = true
                if watch.waiter != 0 { reactor.fail(watch.waiter, with: CancellationError()) }
            }
        }
    }
}
