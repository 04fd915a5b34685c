// FleetCooperative — multitask for Swift: many tasks on one thread, and `offload`.
//
// Not built yet: this module is filled by issue #6. It holds no API until then.
import NIOCore
