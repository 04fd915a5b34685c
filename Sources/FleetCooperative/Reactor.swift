#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import CFleetCooperative

/// The loop's one thread: a serial executor that runs Swift jobs and an epoll poller in turn.
///
/// Everything a ``CooperativeLoop`` does happens here. Jobs enqueued from the loop thread go on a
/// plain array; jobs and callbacks from other threads go through ``inbox`` (a mutex) and an
/// `eventfd` wake-up. Between batches of jobs the thread polls epoll (without blocking while jobs
/// are waiting), resumes the tasks whose descriptors became ready and fires due timers.
///
/// Suspended tasks are *waiters*: an id mapped to a continuation. Readiness, timers, queues and
/// cancellation all finish a wait the same way, by id, so a late event for a finished wait is a
/// no-op.
final class Reactor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable, and why it is safe: the stored properties marked "loop thread only"
    // are read and written only on the loop thread — by `runLoop()` itself, by jobs it runs
    // (`runSynchronously`), and by callbacks it runs; every entry point that may be called from
    // another thread (`enqueue`, `execute`, `shutdown`, `isOnLoopThread`) touches only `inbox`
    // (a Mutex), the atomics and the eventfd. Loop-thread-only entry points check
    // `preconditionOnLoopThread()` in debug builds.

    /// Work handed over by other threads.
    private struct Inbox: ~Copyable {
        var jobs: [UnownedJob] = []
        var callbacks: [@Sendable () -> Void] = []
        /// An eventfd write is in flight and not yet consumed by the loop.
        var woken = false
        var stopping = false
    }

    private let epollFD: Int32
    private let wakeFD: Int32
    private let inbox = Mutex(Inbox())
    private let loopThread = Atomic<UInt>(0)
    private let exited = Atomic<Bool>(false)

    // Loop thread only: so no two accesses ever overlap, and the dynamic exclusivity checks (a
    // thread-local access set per access, on every wait and wake-up) are off.
    @exclusivity(unchecked) private var queue: [UnownedJob] = []
    @exclusivity(unchecked) private var running: [UnownedJob] = []
    @exclusivity(unchecked) private var callbacks: [() -> Void] = []
    /// Tasks that yielded; they resume after the jobs that were ready when they yielded.
    @exclusivity(unchecked) var yielded: [UnsafeContinuation<Void, Never>] = []
    @exclusivity(unchecked) private var registrations: [Registration?] = []
    @exclusivity(unchecked) private var waiters = WaiterTable()
    @exclusivity(unchecked) private var lastRegistrationID: UInt64 = 0
    @exclusivity(unchecked) var timers = TimerHeap()

    /// Starts the loop thread.
    init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epollFD >= 0, "epoll_create1 failed: errno \(errno)")
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(wakeFD >= 0, "eventfd failed: errno \(errno)")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFD
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0)

        // The thread holds the reactor until it leaves `runLoop()`.
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            let reactor = Unmanaged<Reactor>.fromOpaque(context!).takeRetainedValue()
            reactor.runLoop()
            return nil
        }, context)
        precondition(created == 0, "pthread_create failed: \(created)")
        pthread_detach(thread)
    }

    // MARK: Executor

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if isOnLoopThread {
            queue.append(job)
        } else {
            post { $0.jobs.append(job) }
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    // The loop is also its tasks' task executor (every task of the loop prefers it): a task that
    // resumes from a continuation — every wait — is then enqueued here, not on Swift's global
    // executor and back, and nonisolated code of a loop task runs on the loop's thread too.
    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    func isSameExclusiveExecutionContext(other: Reactor) -> Bool { self === other }

    func checkIsolated() {
        precondition(isOnLoopThread, "not on the cooperative loop's thread")
    }

    /// Whether the loop thread has finished (after ``shutdown()``).
    var hasExited: Bool { exited.load(ordering: .acquiring) }

    /// Whether the calling thread is the loop thread.
    var isOnLoopThread: Bool {
        loopThread.load(ordering: .relaxed) == UInt(pthread_self())
    }

    /// Traps unless called on the loop thread: a loop-bound value used from a nonisolated async
    /// function of a module without NonisolatedNonsendingByDefault, which the compiler lets through.
    @inline(__always)
    func preconditionOnLoopThread() {
        precondition(isOnLoopThread, "FleetCooperative: a loop-bound value was used off its loop's thread")
    }

    /// Runs `callback` on the loop thread, soon; callable from any thread.
    func execute(_ callback: @escaping @Sendable () -> Void) {
        if isOnLoopThread {
            callbacks.append(callback)
        } else {
            post { $0.callbacks.append(callback) }
        }
    }

    /// Adds work to the inbox from another thread; wakes the loop unless a wake-up is pending.
    private func post(_ add: (inout Inbox) -> Void) {
        let wake = inbox.withLock { inbox in
            add(&inbox)
            defer { inbox.woken = true }
            return !inbox.woken
        }
        if wake { self.wake() }
    }

    /// Asks the loop thread to finish; jobs still queued are dropped. Callable from any thread.
    func shutdown() {
        inbox.withLock { $0.stopping = true }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: The loop

    private func runLoop() {
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        cfleet_set_thread_name("FleetCoop-loop")
        let capacity: Int32 = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        defer {
            events.deallocate()
            close(epollFD)
            close(wakeFD)
            exited.store(true, ordering: .releasing)
        }
        let executor = asUnownedSerialExecutor()
        let taskExecutor = asUnownedTaskExecutor()
        var jobsSincePoll = 0
        while true {
            if drainInbox() { return }
            if !callbacks.isEmpty {
                let batch = callbacks
                callbacks.removeAll(keepingCapacity: true)
                for callback in batch { callback() }
            }
            if !yielded.isEmpty {
                let batch = yielded
                yielded.removeAll(keepingCapacity: true)
                for task in batch { task.resume() }  // onto `queue`, behind the jobs there
            }
            if !queue.isEmpty {
                swap(&queue, &running)
                // Every job runs isolated to the loop (it is the loop's one thread either way),
                // so a resumed task's hop back to the loop's actor happens in place.
                for job in running { job.runSynchronously(isolatedTo: executor, taskExecutor: taskExecutor) }
                jobsSincePoll += running.count
                running.removeAll(keepingCapacity: true)
                // Keep running jobs while there are some, polling for I/O at least every 256.
                if (!queue.isEmpty || !yielded.isEmpty) && callbacks.isEmpty && jobsSincePoll < 256 { continue }
            }
            let timeout: Int32
            if !queue.isEmpty || !callbacks.isEmpty || !yielded.isEmpty {
                timeout = 0
            } else if let deadline = timers.earliest {
                let now = Reactor.now()
                timeout = deadline <= now ? 0 : Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            } else {
                timeout = -1
            }
            let count = epoll_wait(epollFD, events, capacity, timeout)
            jobsSincePoll = 0
            if count > 0 {
                for index in 0..<Int(count) { dispatch(events[index]) }
            }
            if timers.earliest != nil { fireTimers() }
        }
    }

    /// Moves work from other threads onto the loop; true when the loop should stop.
    private func drainInbox() -> Bool {
        let (jobs, remote, stopping) = inbox.withLock { inbox -> ([UnownedJob], [@Sendable () -> Void], Bool) in
            guard !inbox.jobs.isEmpty || !inbox.callbacks.isEmpty || inbox.stopping else { return ([], [], false) }
            defer {
                inbox.jobs.removeAll()
                inbox.callbacks.removeAll()
            }
            return (inbox.jobs, inbox.callbacks, inbox.stopping)
        }
        if stopping { return true }
        queue.append(contentsOf: jobs)
        for callback in remote { callbacks.append(callback) }
        return false
    }

    private func dispatch(_ event: epoll_event) {
        let fd = event.data.fd
        if fd == wakeFD {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
            inbox.withLock { $0.woken = false }
            return
        }
        guard fd >= 0, Int(fd) < registrations.count, let registration = registrations[Int(fd)] else { return }
        let flags = event.events
        let failed = flags & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
        if failed || flags & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 {
            registration.readable = true
            if registration.readWaiter != 0 { resume(registration.readWaiter) }
        }
        if failed || flags & EPOLLOUT.rawValue != 0 {
            registration.writable = true
            if registration.writeWaiter != 0 { resume(registration.writeWaiter) }
        }
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    // MARK: Waiters (loop thread only)

    /// Suspends the calling task until the tasks that are ready now have run once.
    ///
    /// `Task.yield()` would do the same through the global executor and back — two thread
    /// switches; this stays on the loop.
    func yield(isolation: isolated (any Actor)? = #isolation) async {
        preconditionOnLoopThread()
        await withUnsafeContinuation(isolation: isolation) { (task: UnsafeContinuation<Void, Never>) in
            self.yielded.append(task)
        }
    }

    /// A fresh waiter id (never 0).
    ///
    /// Every id made here is waited on with ``suspend(_:deadline:timeout:operation:succeedAtDeadline:isolation:)``
    /// right away, which frees it when the wait ends (or cannot begin).
    func makeWaiterID() -> UInt64 {
        waiters.reserve()
    }

    /// Whether the wait `id` has not finished yet.
    func isWaiting(_ id: UInt64) -> Bool { waiters.contains(id) }

    /// Finishes the wait `id` successfully, if it has not finished.
    func resume(_ id: UInt64) {
        waiters.take(id)?.resume()
    }

    /// Finishes the wait `id` with `error`, if it has not finished.
    func fail(_ id: UInt64, with error: any Error) {
        waiters.take(id)?.resume(throwing: error)
    }

    /// Suspends the calling task (on the loop) as waiter `id` until something calls
    /// ``resume(_:)`` or ``fail(_:with:)`` for it; at `deadline` (CLOCK_MONOTONIC ns) the wait
    /// ends with `Timeout` — or, when `succeedAtDeadline`, successfully (a sleep). Cancelling the
    /// task ends the wait with `CancellationError`. `registration`, when the wait is for one,
    /// remembers the task's ``TaskWatch`` for its next wait.
    func suspend(
        _ id: UInt64, deadline: UInt64? = nil, timeout: Duration? = nil, operation: String = "",
        succeedAtDeadline: Bool = false, registration: Registration? = nil,
        isolation: isolated (any Actor)? = #isolation
    ) async throws {
        preconditionOnLoopThread()
        if let watch = TaskWatch.forCurrentTask(cachedIn: registration) {
            // A task of `CooperativeLoop.add`: its one cancellation handler fails this wait. (A
            // cancellation whose callback has not run yet fails the wait when it does.)
            if watch.cancelled {
                waiters.release(id)
                throw CancellationError()
            }
            watch.waiter = id
            defer { watch.waiter = 0 }
            try await withUnsafeThrowingContinuation(isolation: isolation) { (continuation: UnsafeContinuation<Void, any Error>) in
                self.wait(id, continuation, deadline: deadline, timeout: timeout, operation: operation, succeedAtDeadline: succeedAtDeadline)
            }
            return
        }
        // Any other task (a child made with `async let`, a task group or `Task {}`): a handler
        // for this wait alone. Both closures capture `isolation`, which makes them isolated to it
        // (the loop): the continuation is stored, and the timer pushed, on the loop's thread.
        try await withTaskCancellationHandler(operation: {
            _ = isolation
            try await withUnsafeThrowingContinuation(isolation: isolation) { (continuation: UnsafeContinuation<Void, any Error>) in
                self.preconditionOnLoopThread()
                if Task.isCancelled {
                    self.waiters.release(id)
                    continuation.resume(throwing: CancellationError())
                    return
                }
                self.wait(id, continuation, deadline: deadline, timeout: timeout, operation: operation, succeedAtDeadline: succeedAtDeadline)
            }
        }, onCancel: {
            self.execute { self.fail(id, with: CancellationError()) }
        }, isolation: isolation)
    }

    /// Records waiter `id`, and its timer when it has a deadline.
    private func wait(
        _ id: UInt64, _ continuation: UnsafeContinuation<Void, any Error>, deadline: UInt64?, timeout: Duration?,
        operation: String, succeedAtDeadline: Bool
    ) {
        waiters.park(id, continuation)
        if let deadline {
            timers.push(Timer(
                deadline: deadline, waiter: id,
                action: succeedAtDeadline ? .resume : .timeout(operation: operation, after: timeout ?? .zero)))
        }
    }

    private func fireTimers() {
        let now = Reactor.now()
        while let timer = timers.popDue(now: now) {
            switch timer.action {
            case .resume: resume(timer.waiter)
            case .timeout(let operation, let after): fail(timer.waiter, with: Timeout(operation: operation, after: after))
            }
        }
        // Timers of waits that finished early stay in the heap until due; drop them in bulk when
        // they outnumber the live ones.
        if timers.count > 1024 && timers.count > 4 * waiters.count {
            timers.removeAll { !waiters.contains($0.waiter) }
        }
    }

    // MARK: Descriptors (loop thread only)

    /// Adds `fd` to epoll (edge-triggered, read and write) and returns its registration.
    func register(_ fd: Int32, events: UInt32 = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue) throws(SocketError) -> Registration {
        preconditionOnLoopThread()
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else { throw SocketError(operation: "epoll_ctl", errno: errno) }
        lastRegistrationID &+= 1
        let registration = Registration(fd: fd, id: lastRegistrationID)
        while registrations.count <= Int(fd) { registrations.append(nil) }
        registrations[Int(fd)] = registration
        return registration
    }

    /// Whether `fd` is registered by a socket of this loop.
    func isRegistered(_ fd: Int32) -> Bool {
        fd >= 0 && Int(fd) < registrations.count && registrations[Int(fd)] != nil
    }

    /// Removes `registration` from epoll and fails its waiters with `error`; the caller closes the
    /// descriptor afterwards (when it owns it).
    func deregister(_ registration: Registration, failingWaitersWith error: any Error) {
        preconditionOnLoopThread()
        forget(fd: registration.fd, id: registration.id, removeFromEpoll: true)
        if registration.readWaiter != 0 { fail(registration.readWaiter, with: error) }
        if registration.writeWaiter != 0 { fail(registration.writeWaiter, with: error) }
    }

    /// Drops the registration of `fd` if it is still registration `id`.
    func forget(fd: Int32, id: UInt64, removeFromEpoll: Bool) {
        guard fd >= 0, Int(fd) < registrations.count, registrations[Int(fd)]?.id == id else { return }
        registrations[Int(fd)] = nil
        if removeFromEpoll { _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) }
    }

    /// Suspends until `registration` reports readiness for `direction`, or until `deadline`.
    func waitUntilReady(
        _ registration: Registration, _ direction: Direction, deadline: UInt64?, timeout: Duration?, operation: String
    ) async throws {
        let id = makeWaiterID()
        switch direction {
        case .read: registration.readWaiter = id
        case .write: registration.writeWaiter = id
        }
        defer {
            switch direction {
            case .read: if registration.readWaiter == id { registration.readWaiter = 0 }
            case .write: if registration.writeWaiter == id { registration.writeWaiter = 0 }
            }
        }
        try await suspend(id, deadline: deadline, timeout: timeout, operation: operation, registration: registration)
    }

    /// A deadline `timeout` from now, or nil.
    static func deadline(after timeout: Duration?) -> UInt64? {
        guard let timeout else { return nil }
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = max(0, seconds) &* 1_000_000_000 &+ max(0, attoseconds / 1_000_000_000)
        return now() &+ UInt64(nanoseconds)
    }
}

/// Read or write readiness.
enum Direction { case read, write }

/// One descriptor in epoll, edge-triggered: `readable` / `writable` remember the last edge until
/// an operation finds the kernel buffer empty (or full) again. Loop thread only.
final class Registration {
    let fd: Int32
    let id: UInt64
    // Loop thread only (see `Reactor`): no dynamic exclusivity checks.
    @exclusivity(unchecked) var readable = true
    @exclusivity(unchecked) var writable = true
    @exclusivity(unchecked) var readWaiter: UInt64 = 0
    @exclusivity(unchecked) var writeWaiter: UInt64 = 0
    /// The watch of the task that waited on it last (see ``TaskWatch/forCurrentTask(cachedIn:)``).
    @exclusivity(unchecked) var watch: TaskWatch?

    init(fd: Int32, id: UInt64) {
        self.fd = fd
        self.id = id
    }
}
