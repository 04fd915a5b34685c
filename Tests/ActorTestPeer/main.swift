// actor-test-peer: the serving process of the FleetActors integration tests. Publishes a
// Calculator as "calc" on a free loopback port (secret from FLEET_SECRET), prints
// "listening on HOST:PORT", and serves until its standard input closes or it is killed.

import FleetActors
import FleetActorsTestSupport
import FleetWire
import Foundation

let credentials = try Credentials.resolve(secretFile: nil, insecure: false)
let system = FleetActorSystem(configuration: .init(credentials: credentials))
let endpoint = try await system.listen(on: Endpoint(host: "127.0.0.1", port: 0))
system.publish(Calculator(actorSystem: system), as: "calc")
print("listening on \(endpoint)")
fflush(nil)
// Wait for the parent to close our input, on a thread of our own (not the cooperative pool).
await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
    Thread {
        while readLine() != nil {}
        continuation.resume()
    }.start()
}
await system.shutdown()
