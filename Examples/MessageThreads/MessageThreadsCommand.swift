// message-threads: the seed's "threading" example — two threads printing messages.

import ArgumentParser
import FleetExamples

/// `message-threads`: runs the seed's two `MessageThread`s and waits for both.
@main
struct MessageThreadsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "message-threads",
        abstract: "The seed's threading example: two threads print numbered messages, sleeping 1 s and 2 s between lines.",
        discussion: """
            "thread - 1" prints "1 thread - 1" … "COUNT thread - 1", sleeping 1 s after each line; \
            "thread - 2" does the same sleeping 2 s. Both run at once on Foundation threads; the \
            program exits when both are done (about 2 × COUNT seconds × SLEEP-SCALE).
            """
    )

    @Option(help: "Lines each thread prints (the seed's 50).")
    var count: Int = 50

    @Option(help: "Multiplies the seed's sleeps of 1 s and 2 s, e.g. 0.05 for a quick run.")
    var sleepScale: Double = 1.0

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative.") }
        guard sleepScale >= 0 else { throw ValidationError("--sleep-scale must not be negative.") }
    }

    func run() throws {
        MessageThreads.run(count: count, sleepScale: sleepScale)
    }
}
