#if canImport(Glibc)
import Glibc
#endif
import FleetWire
import Foundation
import Synchronization

/// Another host where a launcher starts ranks: the `Fleet` module's `fleet serve` nodes
/// (`fleet launch --hosts`). FleetMPI knows only this much of them.
package protocol RankSite: Sendable {
    /// How messages name the site ("node 10.0.0.2:60000").
    var name: String { get }
    /// The address the site's ranks listen on for the other ranks.
    var rankHost: String { get }
    /// The address at which the site's ranks reach this host: the launcher's control port.
    var launcherHost: String { get }
    /// Starts `rank` there with `arguments` and `environment` (the job's own and the launch
    /// variables); what it prints goes to `output` (`isError` for its standard error), in order.
    func start(
        rank: Int, arguments: [String], environment: [String: String],
        output: @escaping @Sendable (_ bytes: [UInt8], _ isError: Bool) -> Void
    ) -> any RemoteRank

    /// Why a rank there failed, when ``RemoteRank/ending`` threw `error` ("was lost with node
    /// 10.0.0.2:60000: connection lost", "could not be started on …").
    func failure(_ error: any Error) -> String
}

/// What a launcher can do to a rank it started: signal it.
package protocol RankHandle: Sendable {
    func signal(_ signal: Int32)
}

/// A rank started on a ``RankSite``.
package protocol RemoteRank: RankHandle {
    /// How the rank ended, once it has and all its output has come.
    ///
    /// - Throws: when the site was lost: how the rank ended is then unknown.
    var ending: ProcessEnding { get async throws }
}

extension ChildProcess: RankHandle {}

/// A remote rank's output, written out here: as it comes, or line by line prefixed with
/// `[rank] ` (`fleet launch --prefix`).
final class RankOutput: Sendable {
    private let prefix: Bool
    private let lines: Mutex<(output: LinePrefixer, errors: LinePrefixer)>

    init(rank: Int, prefix: Bool) {
        self.prefix = prefix
        lines = Mutex((LinePrefixer(rank: rank), LinePrefixer(rank: rank)))
    }

    func write(_ bytes: [UInt8], isError: Bool) {
        guard prefix else { return LauncherOutput.write(bytes[...], isError: isError) }
        let complete = lines.withLock { lines in
            isError ? lines.errors.append(bytes[...]) : lines.output.append(bytes[...])
        }
        LauncherOutput.write(complete[...], isError: isError)
    }

    /// The rank ended: writes what is left of an unfinished last line.
    func finish() {
        guard prefix else { return }
        let (output, errors) = lines.withLock { lines in (lines.output.finish(), lines.errors.finish()) }
        LauncherOutput.write(output[...], isError: false)
        LauncherOutput.write(errors[...], isError: true)
    }
}

/// The launcher's standard output and error, which every rank's output goes to: one write at a
/// time, whole, so that lines of ranks written by different threads never interleave (a write
/// to a pipe longer than `PIPE_BUF` is not atomic).
enum LauncherOutput {
    private static let lock = Mutex(())

    static func write(_ bytes: ArraySlice<UInt8>, isError: Bool) {
        guard !bytes.isEmpty else { return }
        let fd: Int32 = isError ? 2 : 1
        lock.withLock { _ in
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return   // The launcher's output is gone (a closed pipe): nothing to do.
                    }
                    offset += written
                }
            }
        }
    }
}

/// Splits a rank's output into lines, each prefixed with `[rank] `.
struct LinePrefixer: Sendable {
    private let prefix: [UInt8]
    private var pending: [UInt8] = []

    init(rank: Int) {
        prefix = Array("[\(rank)] ".utf8)
    }

    /// Takes `bytes`; returns the lines they complete, prefixed.
    mutating func append(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        pending += bytes
        var lines: [UInt8] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            lines += prefix + pending[...newline]
            pending.removeSubrange(...newline)
        }
        return lines
    }

    /// The unfinished last line, prefixed and ended; empty when there is none.
    mutating func finish() -> [UInt8] {
        defer { pending = [] }
        return pending.isEmpty ? [] : prefix + pending + [UInt8(ascii: "\n")]
    }
}
