import Dispatch
import Foundation
import Synchronization

/// Suspends until the process receives SIGINT or SIGTERM (the signals are handled here while it
/// waits, instead of ending the process), so that a server can shut down in order.
public func waitForTerminationSignal() async {
    let signalled = SignalFlag()
    var sources: [any DispatchSourceSignal] = []
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let queue = DispatchQueue(label: "fleet.signals")
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                if !signalled.value.exchange(true, ordering: .relaxed) { continuation.resume() }
            }
            source.resume()
            sources.append(source)
        }
    }
    for source in sources { source.cancel() }
}

/// Whether a termination signal has arrived.
private final class SignalFlag: Sendable {
    let value = Atomic<Bool>(false)
}
