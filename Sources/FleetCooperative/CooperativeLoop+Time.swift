extension CooperativeLoop {
    /// Suspends the calling task for `duration`; the loop runs other tasks meanwhile.
    ///
    /// - Throws: `CancellationError` if the task is cancelled first.
    public func sleep(for duration: Duration) async throws {
        let id = reactor.makeWaiterID()
        try await reactor.suspend(id, deadline: Reactor.deadline(after: duration), succeedAtDeadline: true)
    }

    /// Suspends the calling task until `deadline`.
    ///
    /// - Throws: `CancellationError` if the task is cancelled first.
    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await sleep(for: max(.zero, ContinuousClock.now.duration(to: deadline)))
    }

    /// Lets every other task that is ready run once, then resumes the calling task: the bare
    /// `yield` of a multitask generator.
    public func yield() async {
        await withUnsafeContinuation { reactor.yielded.append($0) }
    }
}
