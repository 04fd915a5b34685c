#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FleetWire
import Foundation

/// A rank's process, started with `posix_spawn` and reaped by a thread of its own with
/// `waitpid`: the launcher learns of every exit, however many ranks end at once.
final class RankProcess: Sendable {
    let pid: pid_t

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// How a process ended.
    enum Ending: Sendable {
        case exited(Int32)
        case signalled(Int32)

        /// The status a shell would give: the exit status, or 128 + the signal.
        var status: Int32 {
            switch self {
            case let .exited(status): status
            case let .signalled(signal): 128 + signal
            }
        }

        var description: String {
            switch self {
            case let .exited(status): "exited with status \(status)"
            case let .signalled(signal): killedBySignalDescription(signal)
            }
        }
    }

    /// Starts `executable` with `arguments` and `environment`; its standard output and error go
    /// to `output` and `errors` when given (else this process's own).
    static func spawn(
        executable: String, arguments: [String], environment: [String: String], output: Int32? = nil, errors: Int32? = nil
    ) throws -> RankProcess {
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
            throw CommunicatorError.invalidArgument("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return RankProcess(pid: pid)
    }

    /// Waits for the process on a thread of its own; `ended` runs there when it has.
    func whenEnded(_ ended: @escaping @Sendable (Ending) -> Void) {
        let pid = pid
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            let signal = status & 0x7f
            ended(signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal))
        }
        thread.name = "fleet-launch-reaper-\(pid)"
        thread.start()
    }

    func signal(_ signal: Int32) {
        kill(pid, signal)
    }
}
