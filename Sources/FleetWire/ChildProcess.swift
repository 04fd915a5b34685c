#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Synchronization

/// A child process, started with `posix_spawn` and reaped by a thread of its own with
/// `waitpid`: its starter learns of every exit, however many children end at once (a launcher's
/// ranks, the programs a node runs for launchers).
package final class ChildProcess: Sendable {
    package let pid: pid_t
    /// Whether the process was reaped: its PID may belong to another process now.
    private let reaped = Mutex(false)

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Starts `executable` with `arguments` and `environment`; its standard output and error go
    /// to `output` and `errors` when given (else this process's own).
    ///
    /// - Throws: ``SpawnError`` when the program cannot be started.
    package static func spawn(
        executable: String, arguments: [String], environment: [String: String], output: Int32? = nil, errors: Int32? = nil
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output { posix_spawn_file_actions_adddup2(&actions, output, 1) }
        if let errors { posix_spawn_file_actions_adddup2(&actions, errors, 2) }
        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { argv in
            (envp + [nil]).withUnsafeBufferPointer { envp in
                posix_spawn(&pid, executable, &actions, nil, argv.baseAddress!, envp.baseAddress!)
            }
        }
        guard result == 0 else {
            throw SpawnError(executable: executable, reason: String(cString: strerror(result)))
        }
        return ChildProcess(pid: pid)
    }

    /// Waits for the process on a thread of its own; `ended` runs there when it has.
    package func whenEnded(_ ended: @escaping @Sendable (ProcessEnding) -> Void) {
        let pid = pid
        let thread = Thread { [self] in
            // Wait for the end without reaping, then reap under the lock that `signal` takes:
            // a signal never reaches another process that got the PID once it was free.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1, errno == EINTR {}
            var status: Int32 = 0
            self.reaped.withLock { reaped in
                while waitpid(pid, &status, 0) == -1, errno == EINTR {}
                reaped = true
            }
            ended(ProcessEnding(waitStatus: status))
        }
        thread.name = "fleet-reaper-\(pid)"
        thread.start()
    }

    /// Sends `signal` to the process, unless it has ended and been reaped.
    package func signal(_ signal: Int32) {
        reaped.withLock { reaped in
            if !reaped { kill(pid, signal) }
        }
    }
}

/// Why ``ChildProcess/spawn(executable:arguments:environment:output:errors:)`` could not start a
/// program.
package struct SpawnError: Error, Sendable, Hashable, CustomStringConvertible {
    package var executable: String
    package var reason: String

    package var description: String { "cannot start \(executable): \(reason)" }
}
