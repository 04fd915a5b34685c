import CEchoBench
import FleetCooperative
import Synchronization
import Testing

@testable import FleetExamples

@Suite("multitask examples: printers, echo, offload")
struct CooperativeExamplesTests {
    @Test("the printers' lines alternate, hello first")
    func printersAlternate() async throws {
        let lines = Mutex<[String]>([])
        try await MultitaskPrinter.run(count: 4) { line in lines.withLock { $0.append(line) } }
        #expect(lines.withLock { $0 } == Array(repeating: ["hello", "goodbye"], count: 4).flatMap { $0 })
    }

    @Test("offload: the echo server answers while the work runs (by ordering)")
    func offloadKeepsTheServerAnswering() async throws {
        // The work only finishes once three requests sent after it started have been answered,
        // so it can finish only if the loop kept serving (bounded by a 20 s escape hatch).
        let report = try await OffloadProbe.run(offload: true) { log in
            let end = ContinuousClock.now + .seconds(20)
            while log.repliesSinceComputeStarted < 3 && ContinuousClock.now < end {
                _ = OffloadProbe.spin(for: .milliseconds(1))
            }
        }
        #expect(report.repliesDuringComputation >= 3)
    }

    @Test("inline: no request sent during the work is answered before it ends")
    func inlineWorkStopsTheServer() async throws {
        let report = try await OffloadProbe.run(offload: false) { _ in _ = OffloadProbe.spin(for: .milliseconds(200)) }
        #expect(report.events.contains(.computeFinished))
        #expect(report.repliesDuringComputation == 0)
    }

    @Test("the C load generator measures the C echo server")
    func loadGeneratorAgainstTheCServer() async throws {
        var handle: Int32 = -1
        let port = fleet_echo_server_start(&handle)
        #expect(port > 0)
        defer { fleet_echo_server_stop(handle) }
        let result = await EchoBench.load(port: Int(port), warmup: 10, duration: 100)
        #expect(result.error == 0)
        #expect(result.requests > 0)
        #expect(result.p50_us > 0 && result.p50_us <= result.p99_us)
    }
}
