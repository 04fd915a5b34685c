/// A benchmark that could not produce a trustworthy figure.
public enum BenchError: Error, CustomStringConvertible {
    /// The named value did not survive a round trip.
    case roundTripMismatch(String)
    /// The benchmark's server process did not announce itself; its first line of output.
    case serverDidNotStart(String)
    /// The benchmark could not set up what it measures; what failed.
    case setup(String)

    public var description: String {
        switch self {
        case let .roundTripMismatch(what): "round trip of \(what) gave a different value"
        case let .serverDidNotStart(line): "the benchmark server did not start (it printed '\(line)')"
        case let .setup(what): "benchmark setup failed: \(what)"
        }
    }
}
