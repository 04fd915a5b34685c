// Fleet — the umbrella module: `import Fleet` brings in every Fleet module, plus what needs two
// of them at once and so belongs to neither: `Communicator.withJobServer` (FleetMPI's ranks as
// FleetJobs' workers, in Communicator+JobServer.swift).

@_exported import FleetActors
@_exported import FleetCooperative
@_exported import FleetJobs
@_exported import FleetMPI
@_exported import FleetWire
