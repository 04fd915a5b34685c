/// Many tasks on one thread, with no locks: the Swift counterpart of multitask's scheduler and of
/// an asyncio event loop.
///
/// A loop owns one thread. Every task ``add(_:)``ed to it runs on that thread, one at a time, and
/// switches to another task only where it awaits — an I/O operation such as
/// ``TCPConnection/recv(max:timeout:)``, a ``sleep(for:)``, a ``yield()``, a ``CooperativeQueue``
/// operation, or an ``offload(_:)``. Because the loop is an actor whose executor *is* that
/// thread, code isolated to it can share mutable, non-`Sendable` state with every other task of
/// the loop, and the compiler checks that the state never leaves it:
///
/// ```swift
/// let loop = CooperativeLoop()
/// await loop.add { loop in
///     let log = Log()                      // a non-Sendable class
///     loop.add { log.append("hello") }
///     loop.add { log.append("goodbye") }
/// }
/// try await loop.run()                     // returns when every task has finished
/// ```
///
/// Tasks added while the loop is not running wait for ``run()`` and then start in the order they
/// were added, as with `multitask.add` and `multitask.run`. Tasks added by running tasks start at
/// once. Work that would hold the thread — blocking calls, long computations — belongs in
/// ``offload(_:)``.
///
/// The loop's thread stops when the loop is released.
public actor CooperativeLoop {
    nonisolated let reactor: Reactor

    /// Tasks added while the loop was not running, by id, in the order added: they start in
    /// that order once ``run()`` (or ``run(until:)``) is called.
    private var startOrder: [UInt64] = []
    /// Those of them that reached the start and wait to be let through, by id.
    private var gate: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var isRunning = false
    private var lastTaskID: UInt64 = 0
    /// Cancels each unfinished task, by id.
    private var live: [UInt64: @Sendable () -> Void] = [:]
    private var failures: [TaskRecord] = []
    private var idle: [CheckedContinuation<Void, Never>] = []

    /// The loop's thread, as the actor's executor.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        reactor.asUnownedSerialExecutor()
    }

    /// Creates a loop and starts its thread.
    public init() {
        reactor = Reactor()
    }

    deinit {
        reactor.shutdown()
    }

    /// The number of tasks added to the loop that have not finished.
    public var taskCount: Int { live.count }

    /// Adds a task to the loop, from a task of the loop.
    ///
    /// The closure inherits the loop's isolation from the code that adds it, so it may capture
    /// and mutate that code's non-`Sendable` state:
    ///
    /// ```swift
    /// let seen = Log()                          // non-Sendable, shared without a lock
    /// loop.add { seen.append("child") }
    /// ```
    ///
    /// Added by a running task, the new task starts at once; added while the loop is not running
    /// (no ``run()`` in progress), it waits and starts when `run()` is called, after the tasks
    /// added before it. Await the returned task's ``CooperativeTask/value`` to get its result or
    /// error — that is how a child task reports to its parent. An error nobody awaits ends
    /// ``run()``. From outside the loop, use the overload of ``add(_:)`` whose closure is given the loop.
    ///
    /// - Parameter body: The task. It runs on the loop's thread.
    /// - Returns: A handle to the task: its result, and cancellation.
    @discardableResult
    public func add<Success: Sendable>(
        @_inheritActorContext(always) _ body: sending @escaping @isolated(any) () async throws -> Success
    ) -> CooperativeTask<Success> {
        lastTaskID &+= 1
        let id = lastTaskID
        let record = TaskRecord()
        let waitsForRun = !isRunning
        if waitsForRun { startOrder.append(id) }
        let task = Task(executorPreference: reactor) { () async throws -> Success in
            try await self.runAdded(id, waitsForRun: waitsForRun, record: record, body)
        }
        live[id] = { task.cancel() }
        return CooperativeTask(task: task, record: record)
    }

    /// An added task's life, on the loop: the start (in the order added), the body, the end.
    /// It runs isolated to the loop throughout, so a task let through at the start goes on into
    /// its body with no hop that could put it behind a task let through after it.
    private func runAdded<Success: Sendable>(
        _ id: UInt64, waitsForRun: Bool, record: TaskRecord, _ body: sending @escaping @isolated(any) () async throws -> Success
    ) async throws -> Success {
        if waitsForRun { await waitForRun(id) }
        do {
            let value = try await TaskWatch.watching(reactor) { try await body() }
            finished(id)
            return value
        } catch {
            finished(id, failing: record, with: error)
            throw error
        }
    }

    /// Adds a task to the loop from outside it — the first task, typically, which then adds the
    /// others with ``add(_:)``.
    ///
    /// ```swift
    /// let loop = CooperativeLoop()
    /// await loop.add { loop in
    ///     let log = Log()                       // a non-Sendable class
    ///     loop.add { log.append("hello") }
    ///     loop.add { log.append("goodbye") }
    /// }
    /// try await loop.run()
    /// ```
    ///
    /// - Parameter body: The task; it is given the loop, isolated, so everything it does runs on
    ///   the loop's thread and may use the loop's synchronous API.
    /// - Returns: A handle to the task: its result, and cancellation.
    @discardableResult
    public nonisolated func add<Success: Sendable>(
        _ body: @Sendable @escaping (isolated CooperativeLoop) async throws -> Success
    ) async -> CooperativeTask<Success> {
        await add { try await body(self) }
    }

    /// Runs the loop until every task has finished — those added before the call, and every task
    /// they add.
    ///
    /// - Throws: The first error thrown by a task whose ``CooperativeTask/value`` nobody awaited
    ///   (after all tasks have finished); a `CancellationError` of a cancelled task does not count.
    public func run() async throws {
        start()
        if !live.isEmpty {
            await withCheckedContinuation { idle.append($0) }
        }
        try stop()
    }

    /// Runs the loop until every task has finished or `deadline` passes, whichever is first; at
    /// the deadline the unfinished tasks are cancelled (which closes the sockets they wait on) and
    /// the call returns once they have ended.
    ///
    /// - Throws: As ``run()``.
    public func run(until deadline: ContinuousClock.Instant) async throws {
        start()
        if !live.isEmpty {
            let watchdog = Task {
                try await self.sleep(until: deadline)
                for cancel in self.live.values { cancel() }
            }
            await withCheckedContinuation { idle.append($0) }
            watchdog.cancel()
        }
        try stop()
    }

    private func start() {
        isRunning = true
        releaseWaiting()
    }

    private func stop() throws {
        isRunning = false
        let failures = self.failures
        self.failures.removeAll()
        if let failure = failures.first(where: { !$0.isObserved }), let error = failure.error {
            throw error
        }
    }

    /// Waits until the loop runs and every task added before task `id` has started. The tasks
    /// reach this point in whatever order the runtime schedules their first jobs; they leave it
    /// in the order they were added, and the loop's queue runs them in that order.
    private func waitForRun(_ id: UInt64) async {
        if isRunning, startOrder.first == id {
            // The first in line: it goes on now, and lets through those waiting behind it.
            startOrder.removeFirst()
            releaseWaiting()
        } else {
            await withCheckedContinuation { gate[id] = $0 }
        }
    }

    /// Lets through, in the order added, the tasks at the head of the line that are waiting:
    /// each resumes onto the loop's queue, behind the ones before it.
    private func releaseWaiting() {
        while isRunning, let next = startOrder.first, let task = gate.removeValue(forKey: next) {
            startOrder.removeFirst()
            task.resume()
        }
    }

    private func finished(_ id: UInt64, failing record: TaskRecord? = nil, with error: (any Error)? = nil) {
        live.removeValue(forKey: id)
        if let record, let error, !(error is CancellationError) {
            record.error = error
            failures.append(record)
        }
        if live.isEmpty {
            let waiting = idle
            idle.removeAll()
            for waiter in waiting { waiter.resume() }
        }
    }
}

extension CooperativeLoop {
    /// Creates a loop, runs `body` on it as its first task, runs the loop until `body` and every
    /// task it added have finished, and returns what `body` returned.
    ///
    /// ```swift
    /// try await CooperativeLoop.run { loop in
    ///     let listener = try loop.listen(port: 0)
    ///     loop.add { _ in try await serve(listener) }
    ///     …
    /// }
    /// ```
    public static func run<Success: Sendable>(
        _ body: @Sendable @escaping (isolated CooperativeLoop) async throws -> Success
    ) async throws -> Success {
        let loop = CooperativeLoop()
        let task = await loop.add(body)
        try await loop.run()
        return try await task.value
    }
}
