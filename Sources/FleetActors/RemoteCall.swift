/// Per-call options for remote calls made by the current task.
///
/// ```swift
/// // At most 2 seconds for this call, whatever the system's default:
/// let primes = try await RemoteCall.with(timeout: .seconds(2)) {
///     try await primes.getNPrimes(500)
/// }
/// ```
public enum RemoteCall {
    /// The deadline for remote calls made in the current task, overriding
    /// ``FleetActorSystem/Configuration/callTimeout``; `nil` uses the system's.
    @TaskLocal public static var timeout: Duration?

    /// Runs `body` with remote calls limited to `timeout` each.
    public static func with<Result>(
        timeout: Duration,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> Result
    ) async rethrows -> Result {
        try await $timeout.withValue(timeout, operation: body, isolation: isolation)
    }
}
