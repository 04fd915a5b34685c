import FleetCooperative

/// The seed's first multitask example: two printers that yield after every line.
///
/// ```python
/// def printer(message):
///     while True:
///         print message
///         yield
/// multitask.add(printer('hello'))
/// multitask.add(printer('goodbye'))
/// multitask.run()
/// ```
public enum MultitaskPrinter {
    /// The seed's `printer`: prints `message` and yields, `count` times (the seed's runs forever).
    public static func printer(
        _ message: String, count: Int, loop: isolated CooperativeLoop, output: (String) -> Void
    ) async {
        for _ in 0..<count {
            output(message)
            await loop.yield()
        }
    }

    /// Adds the two printers to a new loop and runs it: the lines alternate, hello first.
    public static func run(count: Int, output: @escaping @Sendable (String) -> Void = { print($0) }) async throws {
        let loop = CooperativeLoop()
        await loop.add { loop in await printer("hello", count: count, loop: loop, output: output) }
        await loop.add { loop in await printer("goodbye", count: count, loop: loop, output: output) }
        try await loop.run()
    }
}
