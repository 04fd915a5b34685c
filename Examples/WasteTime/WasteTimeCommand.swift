// waste-time: the seed's "Writing (and indicating) threadsafe C extensions" example.

import ArgumentParser
import FleetExamples

/// `waste-time`: the seed's C loop on 1 thread vs N threads, and the cooperative-pool demo.
@main
struct WasteTimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "waste-time",
        abstract: "The seed's CPU-bound C loop on 1 thread, then on N threads at once: Swift has no GIL.",
        discussion: """
            Part 1 times one call of the C loop on one thread, then N calls on N threads started \
            together, takes the best of --rounds rounds of each, and prints the speedup N × t1 / tN \
            (ideal: N). CPython threads running the \
            same loop without Py_BEGIN_ALLOW_THREADS manage 0.43x on 2 cores.

            Part 2 shows Swift's analogue of holding the GIL: the same calls made inside the \
            cooperative thread pool stall a heartbeat task, and offloading them to dedicated \
            threads keeps it ticking. Both heartbeat delays are measured and printed.
            """
    )

    @Option(help: "Threads in the parallel run. Default: active cores, at least 2.")
    var threads: Int?

    @Option(help: "Iterations of the C loop per thread (the seed's 1024*1024*1024).")
    var iterations: UInt64 = WasteTime.seedIterations

    @Option(help: "Rounds of part 1; the best time of each run is reported.")
    var rounds: Int = WasteTime.defaultRounds

    @Flag(help: "Skip part 2, the cooperative-pool starvation demo.")
    var skipPoolDemo = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1.") }
    }

    func run() async throws {
        await WasteTime.run(
            iterations: iterations,
            threads: threads ?? WasteTime.defaultThreadCount,
            rounds: rounds,
            poolDemo: !skipPoolDemo
        )
    }
}
