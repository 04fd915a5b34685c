// multitask-printer: the seed's first multitask example — two printers on one loop, each
// yielding after every line, so their lines alternate.
//
//     swift run multitask-printer --count 5

import ArgumentParser
import FleetExamples

/// `multitask-printer [--count N]`.
@main
struct MultitaskPrinterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "multitask-printer",
        abstract: "The seed's multitask printers: 'hello' and 'goodbye' tasks on one thread, yielding after every line."
    )

    @Option(help: "Lines each printer prints (the seed's run forever).")
    var count: Int = 5

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative.") }
    }

    func run() async throws {
        try await MultitaskPrinter.run(count: count)
    }
}
