// job-test-peer: the program the FleetJobs integration tests run, with worker processes (which
// are copies of it). `job-test-peer SCENARIO [MARKER-FILE]` prints one line per result.

import FleetJobs
import FleetWire
import Foundation

enum Square: JobFunction {
    static func run(_ n: Int) -> Int { n * n }
}

struct Refused: Error, Codable, Equatable {
    var reason: String
}

enum Refuse: JobFunction {
    static func run(_ reason: String) throws -> Int { throw Refused(reason: reason) }
}

/// Kills its worker process (SIGKILL, as a crash would end it).
enum Crash: JobFunction {
    static func run(_ n: Int) -> Int {
        kill(getpid(), SIGKILL)
        return n
    }
}

/// Kills its worker the first time (when `marker` does not exist yet), then succeeds.
enum CrashOnce: JobFunction {
    static func run(_ marker: String) -> Int {
        if !FileManager.default.fileExists(atPath: marker) {
            _ = FileManager.default.createFile(atPath: marker, contents: Data())
            kill(getpid(), SIGKILL)
        }
        return 42
    }
}

/// Reports which process ran it.
enum WhichProcess: JobFunction {
    static func run(_ n: Int) -> Int32 { getpid() }
}

/// A `Record` job: the directory it leaves its file in, its name, and how long it sleeps.
struct Recording: Codable, Sendable {
    var directory: String
    var name: String
    var milliseconds: Int
}

/// Leaves a file `NAME.UUID` in the directory as it starts, then sleeps; returns its process.
/// Each run of a job leaves one file, so the files count the runs.
enum Record: JobFunction {
    static func run(_ job: Recording) -> Int32 {
        _ = FileManager.default.createFile(atPath: "\(job.directory)/\(job.name).\(UUID().uuidString)", contents: Data())
        usleep(UInt32(job.milliseconds) * 1000)
        return getpid()
    }
}

/// How many times each `Record` job ran, by name, from the files in `directory`.
func runs(in directory: String) -> [String: Int] {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var runs: [String: Int] = [:]
    for file in files { runs[String(file.prefix { $0 != "." }), default: 0] += 1 }
    return runs
}

// A scenario can leave the hook out, as a program that forgets it would.
if ProcessInfo.processInfo.environment["JOB_TEST_SKIP_HOOK"] == nil {
    await JobServer.runWorkerIfRequested()
}

/// Sleeps `milliseconds`, then returns them: a job that takes a while.
enum Nap: JobFunction {
    static func run(_ milliseconds: Int) -> Int {
        usleep(UInt32(milliseconds) * 1000)
        return milliseconds
    }
}

let arguments = CommandLine.arguments.dropFirst()
let server: JobServer
if arguments.first == "discover" {
    // job-test-peer discover PORT: no local workers; only the nodes announcing to 127.0.0.1:PORT.
    let port = Int(arguments.dropFirst().first ?? "") ?? NodeDiscovery.defaultPort
    server = try await JobServer(
        workers: 0, discovery: NodeDiscovery(address: Endpoint(host: "127.0.0.1", port: port)),
        credentials: Credentials.resolve(secretFile: nil, insecure: false))
} else if ["nodes", "longnodes", "cancelnode", "cancelqueuednode"].contains(arguments.first) {
    // job-test-peer nodes HOST:PORT ...: only remote nodes, no local workers.
    let nodes = try arguments.dropFirst().map { try Endpoint($0) }
    server = try await JobServer(workers: 0, nodes: nodes, credentials: Credentials.resolve(secretFile: nil, insecure: false))
} else {
    server = try await JobServer(workers: 2, isolation: .processes)
}
func report(_ label: String, _ body: () async throws -> String) async {
    do { print("\(label): \(try await body())") } catch { print("\(label): error \(type(of: error)) \(error)") }
}
switch arguments.first {
case "squares":
    let jobs = (1...200).map { server.submit(Square.self, $0) }
    var sum = 0
    for job in jobs { sum += try await job.value }
    print("sum: \(sum)")
    var pids = Set<Int32>()
    for job in (0..<20).map({ server.submit(WhichProcess.self, $0) }) { pids.insert(try await job.value) }
    print("worker processes: \(pids.count), not this one: \(!pids.contains(getpid()))")
case "errors":
    await report("refused") {
        do { _ = try await server.submit(Refuse.self, "no funds").value; return "no error" }
        catch let error as Refused { return "Refused(\(error.reason))" }
    }
    await report("crash") { "\(try await server.submit(Crash.self, 1).value)" }
    await report("after crash") { "\(try await server.submit(Square.self, 9).value)" }
    await report("retried") { "\(try await server.submit(CrashOnce.self, arguments.dropFirst().first ?? "/tmp/marker", retryable: true).value)" }
    await report("workers") { "\(server.workers)" }
case "nodes":
    let jobs = (1...60).map { server.submit(Nap.self, 20 + $0 % 3) }
    var total = 0
    for job in jobs { total += try await job.value }
    print("naps: \(jobs.count) done, total \(total) ms")
    // The stats' job time is the time the naps ran, not the time they waited at the node.
    let busy = server.stats.nodes.reduce(Duration.zero) { $0 + $1.busy }
    print("job time: \(busy.components.seconds * 1000 + busy.components.attoseconds / 1_000_000_000_000_000) ms")
    await report("refused") {
        do { _ = try await server.submit(Refuse.self, "remote").value; return "no error" }
        catch let error as Refused { return "Refused(\(error.reason))" }
    }
case "discover":
    // The jobs wait for a node to be heard; a timeout bounds the wait.
    let jobs = (1...40).map { server.submit(Nap.self, 20 + $0 % 3, timeout: .seconds(60)) }
    var total = 0
    for job in jobs { total += try await job.value }
    print("naps: \(jobs.count) done, total \(total) ms")
    // The jobs may all have run on the node heard first: give the other announcements time to
    // be heard (the local row and two nodes), within a bound.
    let heard = ContinuousClock.now + .seconds(10)
    while server.stats.nodes.count < 3, ContinuousClock.now < heard { try await Task.sleep(for: .milliseconds(50)) }
    print(server.stats.table)
case "longnodes":
    let jobs = (1...90).map { _ in server.submit(Nap.self, 50) }
    var total = 0
    for job in jobs { total += try await job.value }
    print("naps: \(jobs.count) done, total \(total) ms")
case "cancel":
    // A job cancelled, and another timed out, while they run: their workers are stopped (else
    // the 20 s naps would hold them, and the shutdown below, for 20 s).
    let began = ContinuousClock.now
    let long = server.submit(Nap.self, 20_000)
    try await Task.sleep(for: .milliseconds(500))
    long.cancel()
    await report("cancelled") { "\(try await long.value)" }
    await report("timed out") { "\(try await server.submit(Nap.self, 20_000, timeout: .milliseconds(500)).value)" }
    try await Task.sleep(for: .milliseconds(300))
    var pids = Set<Int32>()
    for job in (0..<20).map({ server.submit(WhichProcess.self, $0) }) { pids.insert(try await job.value) }
    print("after: \(pids.count) workers")
    await server.shutdown()
    print("stopped within 10 s: \(began.duration(to: .now) < .seconds(10))")
case "cancelnode":
    // On a node with 2 workers: a job cancelled, and another timed out, while they run there.
    // The node stops their workers; else the 20 s naps would hold both for 20 s, and the jobs
    // after them with them.
    let began = ContinuousClock.now
    let long = server.submit(Nap.self, 20_000)
    let timed = server.submit(Nap.self, 20_000, timeout: .milliseconds(1_000))
    try await Task.sleep(for: .milliseconds(1_000))
    long.cancel()
    await report("cancelled") { "\(try await long.value)" }
    await report("timed out") { "\(try await timed.value)" }
    let after = (1...20).map { server.submit(Square.self, $0) }
    var sum = 0
    for job in after { sum += try await job.value }
    print("after: \(sum)")
    print("done within 10 s: \(began.duration(to: .now) < .seconds(10))")
case "cancelqueued", "cancelqueuednode":
    // Two workers (here, or on a node), each sent two 1 s jobs: one runs, one waits behind it
    // in the worker. The waiting ones are cancelled: they must never run.
    let directory = ProcessInfo.processInfo.environment["JOB_TEST_DIR"] ?? NSTemporaryDirectory()
    var pids = Set<Int32>()
    for _ in 0..<50 where pids.count < 2 {
        let warmups = (0..<4).map { _ in server.submit(Record.self, Recording(directory: directory, name: "warmup", milliseconds: 50)) }
        for job in warmups { pids.insert(try await job.value) }
    }
    print("workers up: \(pids.count)")
    try await Task.sleep(for: .milliseconds(200))
    let jobs = (0..<4).map { server.submit(Record.self, Recording(directory: directory, name: "job\($0)", milliseconds: 1_000)) }
    var started = Set<Int>()
    for _ in 0..<300 where started.count < 2 {
        try await Task.sleep(for: .milliseconds(10))
        let ran = runs(in: directory)
        started = Set(jobs.indices.filter { ran["job\($0)"] != nil })
    }
    let waiting = jobs.indices.filter { !started.contains($0) }
    for index in waiting { jobs[index].cancel() }
    for index in waiting { await report("waiting job") { "\(try await jobs[index].value)" } }
    for index in started.sorted() { await report("running job") { "ran in \(try await jobs[index].value)" } }
    // A job left in its worker would start as the one ahead of it ends: give it time to.
    try await Task.sleep(for: .milliseconds(1_500))
    let ran = runs(in: directory)
    print("started first: \(started.count), cancelled: \(waiting.count), cancelled that ran: \(waiting.filter { ran["job\($0)"] != nil }.count)")
case "resize":
    // Fewer workers, then more, again and again, while 300 short jobs run: each runs once.
    let directory = ProcessInfo.processInfo.environment["JOB_TEST_DIR"] ?? NSTemporaryDirectory()
    let jobs = (0..<300).map { server.submit(Record.self, Recording(directory: directory, name: "job\($0)", milliseconds: 10)) }
    for _ in 0..<10 {
        server.setWorkers(1)
        try await Task.sleep(for: .milliseconds(60))
        server.setWorkers(3)
        try await Task.sleep(for: .milliseconds(60))
    }
    server.setWorkers(2)
    var failed = 0
    for job in jobs {
        do { _ = try await job.value } catch { failed += 1; print("failed: \(error)") }
    }
    let ran = runs(in: directory)
    let counts = jobs.indices.map { ran["job\($0)"] ?? 0 }
    print("resized: \(jobs.count) jobs, \(failed) failed, once: \(counts.filter { $0 == 1 }.count), "
        + "more than once: \(counts.filter { $0 > 1 }.count), never: \(counts.filter { $0 == 0 }.count)")
    await report("workers") { "\(server.workers)" }
case "nohook":
    await report("job") { "\(try await server.submit(Square.self, 3).value)" }
case "idlecrash":
    // A worker that dies between jobs is replaced.
    let first = try await server.submit(WhichProcess.self, 0).value
    kill(first, SIGKILL)
    try await Task.sleep(for: .milliseconds(500))
    var pids = Set<Int32>()
    for job in (0..<20).map({ server.submit(WhichProcess.self, $0) }) { pids.insert(try await job.value) }
    print("after idle crash: \(pids.count) workers, killed one gone: \(!pids.contains(first))")
default:
    print("unknown scenario")
}
server.printStats()
await server.shutdown()
