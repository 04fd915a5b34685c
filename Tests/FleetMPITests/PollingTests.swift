@testable import FleetMPI
import Testing

/// The busy wait of the polled transports: its budget, and when it ends.
@Suite("Polling")
struct PollingTests {
    @Test func spinBudgetsAreWholeNanosecondsAndTheDirectOneIsTheShorter() {
        #expect(SpinBudget(.milliseconds(1)).nanoseconds == 1_000_000)
        #expect(SpinBudget(.nanoseconds(1_500)).nanoseconds == 1_500)
        #expect(SpinBudget(.seconds(-1)).nanoseconds == 0)
        #expect(SpinBudget(.seconds(Int64.max)).nanoseconds == .max)
        #expect(SpinBudget(.milliseconds(1)).direct.nanoseconds == SpinBudget(directReceiveSpin).nanoseconds)
        #expect(SpinBudget(.microseconds(20)).direct.nanoseconds == 20_000)
    }

    @Test func aWaitEndsWhenItsConditionHoldsOrItsBudgetIsSpent() {
        var turns = 0
        #expect(pollUntil(for: SpinBudget(.seconds(10)), yielding: false, progress: { turns += 1 }) { turns == 5 })
        #expect(turns == 5)
        let start = ContinuousClock.now
        #expect(!pollUntil(for: SpinBudget(.milliseconds(2)), yielding: true, progress: {}) { false })
        #expect(start.duration(to: .now) < .seconds(5))
        #expect(!pollUntil(for: SpinBudget(.seconds(10)), yielding: false, progress: {}, giveUp: { true }) { false })
    }
}
