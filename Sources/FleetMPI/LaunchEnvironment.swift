import FleetWire
import Foundation

/// What the launcher tells each rank it starts, in the rank's environment: the per-job secret
/// travels there, never in argv.
struct LaunchEnvironment: Sendable {
    static let rankVariable = "FLEET_MPI_RANK"
    static let sizeVariable = "FLEET_MPI_SIZE"
    static let launcherVariable = "FLEET_MPI_LAUNCHER"
    static let secretVariable = "FLEET_MPI_SECRET"
    static let hostVariable = "FLEET_MPI_HOST"
    static let timeoutVariable = "FLEET_MPI_TIMEOUT"
    /// `tcp`, or `shm` with the segment's descriptor in ``segmentVariable``.
    static let transportVariable = "FLEET_MPI_TRANSPORT"
    static let segmentVariable = "FLEET_MPI_SEGMENT"
    /// Microseconds a wait polls before it parks (shared memory) or suspends (TCP) (tuning;
    /// default 1000, or 200 with more ranks than processors; 0 turns polling off over TCP).
    static let spinVariable = "FLEET_MPI_SPIN_US"
    /// The launcher's: bytes per shared-memory ring (tuning and tests).
    static let ringBytesVariable = "FLEET_MPI_SHM_RING_BYTES"
    /// What a ring's size must be, for the errors about ``ringBytesVariable``.
    static let ringSizeRule = "a ring takes a power of two from 4096 bytes to 1 GiB"

    /// How this rank reaches the others.
    enum Transport: Sendable, Equatable {
        case tcp
        /// Shared memory; the segment is open in this descriptor (inherited from the launcher).
        case sharedMemory(segment: Int32)
    }

    var rank: Int
    var size: Int
    /// Where the launcher's control port is.
    var launcher: Endpoint
    var secret: Secret
    /// The address this rank listens on for the others.
    var host: String
    /// The operation timeout the launcher asked for, if any.
    var timeout: Duration?
    var transport: Transport = .tcp
    /// The spin budget asked for, if any.
    var spin: Duration?

    /// How long a wait polls: over shared memory before it parks, over TCP before it suspends.
    func spinBudget(ranks: Int) -> Duration {
        spin ?? Self.defaultSpinBudget(ranks: ranks)
    }

    /// How long a wait polls when nothing asks otherwise: 1 ms, or 200 µs when `ranks` ranks on
    /// this host outnumber its processors.
    static func defaultSpinBudget(ranks: Int) -> Duration {
        isOversubscribed(ranks: ranks) ? .microseconds(200) : .milliseconds(1)
    }

    /// The operation timeout `FLEET_MPI_TIMEOUT` asks for (seconds), if any: set by
    /// `fleet launch --timeout`, or by hand for a job under `mpirun` (`-x FLEET_MPI_TIMEOUT=5`).
    static func timeout(in environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        environment[timeoutVariable].flatMap(Double.init).map { Duration.milliseconds(Int64($0 * 1000)) }
    }

    /// The launch environment, `nil` when the program was not launched (a world of one rank).
    ///
    /// - Throws: ``CommunicatorError/notLaunched(_:)`` when some of it is there but not all,
    ///   or malformed.
    static func current(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> LaunchEnvironment? {
        guard let rankText = environment[rankVariable] else { return nil }
        func required(_ name: String) throws -> String {
            guard let value = environment[name], !value.isEmpty else {
                throw CommunicatorError.notLaunched("\(rankVariable) is set but \(name) is not")
            }
            return value
        }
        guard let rank = Int(rankText), let size = Int(try required(sizeVariable)), size >= 1, (0..<size).contains(rank) else {
            throw CommunicatorError.notLaunched("\(rankVariable)=\(rankText) and \(sizeVariable)=\(environment[sizeVariable] ?? "") do not make a rank")
        }
        let launcher: Endpoint
        do {
            launcher = try Endpoint(try required(launcherVariable))
        } catch let error as CommunicatorError {
            throw error
        } catch {
            throw CommunicatorError.notLaunched("\(launcherVariable): \(error)")
        }
        let secret: Secret
        do {
            secret = try Secret(Array(try required(secretVariable).utf8), source: secretVariable)
        } catch let error as CommunicatorError {
            throw error
        } catch {
            throw CommunicatorError.notLaunched("\(secretVariable): \(error)")
        }
        var launch = LaunchEnvironment(
            rank: rank, size: size, launcher: launcher, secret: secret,
            host: environment[hostVariable] ?? "127.0.0.1", timeout: timeout(in: environment))
        switch environment[transportVariable] ?? "tcp" {
        case "tcp":
            break
        case "shm":
            guard let segment = Int32(try required(segmentVariable)), segment >= 0 else {
                throw CommunicatorError.notLaunched("\(segmentVariable)=\(environment[segmentVariable] ?? "") is not a descriptor")
            }
            launch.transport = .sharedMemory(segment: segment)
        case let other:
            throw CommunicatorError.notLaunched("\(transportVariable)=\(other) is not a transport (tcp or shm)")
        }
        launch.spin = environment[spinVariable].flatMap(Int64.init).map { .microseconds($0) }
        return launch
    }
}

/// What ranks and the launcher tell each other on the launcher's control connections.
enum LaunchMessage: Codable, Sendable {
    /// Rank to launcher: this rank is up and listens on `endpoint`.
    case register(rank: Int, endpoint: String)
    /// Launcher to each rank, once all have registered: every rank's endpoint, by rank.
    case table([String])
    /// Rank to launcher: finalized in order.
    case finished
    /// Rank to launcher: the rank's program failed (threw) with this reason.
    case failed(reason: String)
    /// Launcher to rank: the job is going down because `rank` failed.
    case abort(rank: Int, reason: String)
}

/// The first frame on a connection between two ranks: who dialled.
struct RankHello: Codable, Sendable {
    var rank: Int
}
