#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CFleetWire
import Foundation
import Synchronization

/// A child process, started with `posix_spawn` and reaped by a thread of its own with
/// `waitpid`: its starter learns of every exit, however many children end at once (a launcher's
/// ranks, the programs a node runs for launchers).
package final class ChildProcess: Sendable {
    package let pid: pid_t
    /// Whether the process was reaped: its PID may belong to another process now.
    private let reaped = Mutex(false)

    /// Whether the process leads a process group of its own.
    private let ownGroup: Bool

    private init(pid: pid_t, ownGroup: Bool) {
        self.pid = pid
        self.ownGroup = ownGroup
    }

    /// Starts `executable` with `arguments` and `environment`; its standard output and error go
    /// to `output` and `errors` when given (else this process's own), its standard input is
    /// `/dev/null`. It inherits the descriptors that are not close-on-exec (a launcher passes
    /// the shared-memory segment so; make output pipes with ``makeChildPipe()``), every signal
    /// at its default disposition and none blocked (whatever this process ignores or blocks),
    /// and, with `ownGroup`, a process group of its own, which ``signalGroup(_:)`` reaches whole.
    ///
    /// - Throws: ``SpawnError`` when the program cannot be started.
    package static func spawn(
        executable: String, arguments: [String], environment: [String: String], output: Int32? = nil, errors: Int32? = nil,
        ownGroup: Bool = false
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output { posix_spawn_file_actions_adddup2(&actions, output, 1) }
        if let errors { posix_spawn_file_actions_adddup2(&actions, errors, 2) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        if ownGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { argv in
            (envp + [nil]).withUnsafeBufferPointer { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv.baseAddress!, envp.baseAddress!)
            }
        }
        guard result == 0 else {
            throw SpawnError(executable: executable, reason: String(cString: strerror(result)))
        }
        return ChildProcess(pid: pid, ownGroup: ownGroup)
    }

    /// Waits for the process on a thread of its own; `ended` runs there when it has. Call it
    /// once.
    package func whenEnded(_ ended: @escaping @Sendable (ProcessEnding) -> Void) {
        let pid = pid
        let thread = Thread { [self] in
            // Wait for the end without reaping, then reap under the lock that `signal` takes:
            // a signal never reaches another process that got the PID once it was free.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1, errno == EINTR {}
            var status: Int32 = 0
            let reaped = self.reaped.withLock { reaped in
                var result: pid_t
                repeat { result = waitpid(pid, &status, 0) } while result == -1 && errno == EINTR
                reaped = true
                return result == pid
            }
            // Reaped by someone else (a wait for every child elsewhere in the process): the
            // status is lost; report a failure rather than a clean exit.
            ended(reaped ? ProcessEnding(waitStatus: status) : .exited(255))
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

    /// Sends `signal` to the process's group — the process and whatever it started that stayed
    /// in it — when it was started with a group of its own; else to the process alone.
    package func signalGroup(_ signal: Int32) {
        reaped.withLock { reaped in
            if ownGroup {
                // After the reap the group may outlive its leader; its ID stays taken until
                // the last member is gone, so it names no one else.
                kill(-pid, signal)
            } else if !reaped {
                kill(pid, signal)
            }
        }
    }
}

/// A pipe whose ends no child process inherits (`pipe2(O_CLOEXEC)`): what a child's output
/// goes through, with the write end passed to ``ChildProcess/spawn(executable:arguments:environment:output:errors:ownGroup:)``.
///
/// - Throws: ``SpawnError`` when the system has no pipe to give.
package func makeChildPipe() throws -> (read: Int32, write: Int32) {
    var ends: [Int32] = [0, 0]
    guard cfleetwire_pipe_cloexec(&ends) == 0 else {
        throw SpawnError(executable: "the program", reason: "no pipe for its output: \(String(cString: strerror(errno)))")
    }
    return (ends[0], ends[1])
}

/// Why ``ChildProcess/spawn(executable:arguments:environment:output:errors:ownGroup:)`` could not
/// start a program.
package struct SpawnError: Error, Sendable, Hashable, CustomStringConvertible {
    package var executable: String
    package var reason: String

    package var description: String { "cannot start \(executable): \(reason)" }
}
