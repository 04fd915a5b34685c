// Fleet — the umbrella module: `import Fleet` brings in every Fleet module.

@_exported import FleetActors
@_exported import FleetCooperative
@_exported import FleetJobs
@_exported import FleetMPI
@_exported import FleetWire
