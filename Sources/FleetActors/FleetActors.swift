// FleetActors — RPyC for Swift: a distributed actor system over FleetWire.
//
// Not built yet: this module is filled by issue #3. It holds no API until then, so nothing here
// can be mistaken for a working remote-call layer.
import FleetWire
