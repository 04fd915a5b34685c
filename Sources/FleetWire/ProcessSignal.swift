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
