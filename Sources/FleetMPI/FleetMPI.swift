// FleetMPI — pyMPI for Swift: Communicator, collectives, transports and the launcher core.
//
// Not built yet: this module is filled by issue #5. It holds no API until then.
import FleetWire
