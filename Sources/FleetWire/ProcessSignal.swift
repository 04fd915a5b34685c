#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How Fleet words a process that a signal ended, wherever it reports one (a job's worker
/// process, a rank): "was killed by signal 9 (Killed)".
package func killedBySignalDescription(_ signal: Int32) -> String {
    "was killed by signal \(signal) (\(strsignal(signal).map { String(cString: $0) } ?? "signal"))"
}

/// How a child process ended, as Fleet reports it wherever it starts one (a rank, a program a
/// node runs for a launcher); `Codable`, so a node can say how a process of its ended.
package enum ProcessEnding: Codable, Sendable, Hashable, CustomStringConvertible {
    /// It exited with this status.
    case exited(Int32)
    /// A signal ended it.
    case signalled(Int32)

    /// The `waitpid` status word's meaning.
    package init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// The status a shell would give: the exit status, or 128 + the signal.
    package var status: Int32 {
        switch self {
        case let .exited(status): status
        case let .signalled(signal): 128 + signal
        }
    }

    /// "exited with status 3", "was killed by signal 9 (Killed)".
    package var description: String {
        switch self {
        case let .exited(status): "exited with status \(status)"
        case let .signalled(signal): killedBySignalDescription(signal)
        }
    }
}
