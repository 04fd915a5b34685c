import CFleetMPI
import Dispatch
import Foundation

/// Drives `progress` until `done` holds or `budget` has passed: the busy wait of transports
/// whose messages arrive without a system call (shared memory, an MPI library).
///
/// Each turn pauses the processor briefly (unless `relaxing` is `false`: for turns that are
/// library calls, pause enough by themselves); after 4096 turns, or at once when `yielding`
/// (more ranks than processors), it gives the processor away between turns, so that a rank
/// with work to do gets it. Task cancellation ends the wait early, and so does `giveUp`, asked
/// as seldom as the clock (every 64 turns: a wait that ends sooner reads no clock at all).
///
/// - Returns: whether `done` held.
func pollUntil(
    for budget: SpinBudget, yielding: Bool, relaxing: Bool = true, progress: () -> Void, giveUp: () -> Bool = { false },
    until done: () -> Bool
) -> Bool {
    let nanoseconds = budget.nanoseconds
    var deadline: UInt64 = 0
    var turns = 0
    while true {
        progress()
        if done() { return true }
        turns &+= 1
        if turns & 63 == 0 {
            let now = DispatchTime.now().uptimeNanoseconds
            // The first 64 turns count towards the budget as if they took no time.
            if deadline == 0 { deadline = now &+ nanoseconds }
            if now >= deadline || Task.isCancelled || giveUp() { return false }
        }
        if yielding || turns > 4096 { fleet_shm_yield() } else if relaxing { fleet_shm_relax() }
    }
}

/// How long a busy wait polls, in plain nanoseconds of the monotonic clock: worked out once,
/// when links are made, not at every wait (a `Duration`'s parts take 128-bit arithmetic: about
/// ten nanoseconds on the path of every message, in a profile of the trait's ping-pong).
struct SpinBudget: Sendable {
    /// The budget in nanoseconds.
    let nanoseconds: UInt64

    /// `duration` in whole nanoseconds: zero for a negative one, and at most `UInt64.max`.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (whole, tooLong) = UInt64(max(0, seconds)).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, carried) = whole.addingReportingOverflow(UInt64(max(0, attoseconds / 1_000_000_000)))
        nanoseconds = tooLong || carried ? .max : total
    }

    /// The budget of a wait on the direct path: ``directReceiveSpin``, or `self` when shorter.
    var direct: SpinBudget { SpinBudget(nanoseconds: min(nanoseconds, SpinBudget(directReceiveSpin).nanoseconds)) }

    /// A budget of `nanoseconds`.
    private init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
}

/// How long a receive polls for its message on the direct path (``PolledLinks/receiveDirectly(from:context:tag:giveUp:take:)``)
/// before it takes the usual way, whose own spin then follows: short, so that a message that
/// is long in coming costs little more polling than before.
let directReceiveSpin: Duration = .microseconds(100)

/// Whether `ranks` ranks on this host outnumber its processors: then a polling rank gives the
/// processor away at every turn, and polls for less long before it parks.
func isOversubscribed(ranks: Int) -> Bool {
    ranks > ProcessInfo.processInfo.activeProcessorCount
}
