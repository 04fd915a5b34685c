import Distributed
import FleetActors

/// Where a program that a node runs for a launcher (``JobNode/runProgram(executable:client:ticket:arguments:environment:output:)``)
/// writes: an actor that lives with the launcher, which the node calls back with the program's
/// output, in order, as it comes.
package distributed actor ProgramOutput {
    package typealias ActorSystem = FleetActorSystem

    private let sink: @Sendable ([UInt8], ProgramStream) -> Void

    /// An output whose bytes go to `sink`, called once per piece, in the order written.
    package init(actorSystem: FleetActorSystem, sink: @escaping @Sendable ([UInt8], ProgramStream) -> Void) {
        self.actorSystem = actorSystem
        self.sink = sink
    }

    /// The program wrote `bytes` to `stream`.
    distributed func write(_ bytes: [UInt8], to stream: ProgramStream) {
        sink(bytes, stream)
    }
}

/// Which of a program's output streams a piece of output came from.
package enum ProgramStream: UInt8, Codable, Sendable, Hashable {
    case standardOutput = 1
    case standardError = 2
}
