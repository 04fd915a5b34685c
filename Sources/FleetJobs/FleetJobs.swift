// FleetJobs — Parallel Python for Swift: JobServer, jobs, local and remote workers.
//
// Not built yet: this module is filled by issue #4. It holds no API until then.
import FleetActors
import FleetWire
