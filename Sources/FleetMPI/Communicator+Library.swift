import CFleetMPI

/// On an MPI library (the trait `MPI`, under `mpirun` or `srun`), the world communicator's
/// barrier and its allreduces of numbers with the built-in operations are the library's own
/// `MPI_Barrier` and `MPI_Allreduce`: its algorithms, tuned for its transports. Everything else
/// — Codable values, custom operations, sub-communicators — runs FleetMPI's algorithms over the
/// library's point-to-point messages.
extension Communicator {
    /// Whether this is the world communicator of a job on an MPI library.
    private var isLibraryWorld: Bool { world.usesLibrary && context == 2 }

    /// `MPI_Barrier`, when the library serves this communicator; else `false`.
    func libraryBarrier() async throws -> Bool {
        guard isLibraryWorld else { return false }
        try await onLoop { try LibraryLinks.check(fleet_mpi_barrier(), "MPI_Barrier") }
        return true
    }

    /// `MPI_Allreduce` of `values`, when the library serves this communicator, the operation is
    /// a built-in and the elements are numbers MPI knows; else `nil`.
    func libraryAllreduce<T: Sendable>(_ values: [T], _ operation: Reduction<T>) async throws -> [T]? {
        guard isLibraryWorld, let builtin = operation.builtin, let type = LibraryDatatype.code(of: T.self),
              values.count <= Int(Int32.max) else { return nil }
        let code: Int32 = switch builtin {
        case .sum: Int32(FLEET_MPI_SUM)
        case .prod: Int32(FLEET_MPI_PROD)
        case .min: Int32(FLEET_MPI_MIN)
        case .max: Int32(FLEET_MPI_MAX)
        }
        var result = values
        try await onLoop {
            // `T` is one of the plain numeric types `LibraryDatatype` names.
            try result.withUnsafeMutableBufferPointer { buffer in
                try LibraryLinks.check(
                    fleet_mpi_allreduce(buffer.baseAddress, Int32(buffer.count), type, code), "MPI_Allreduce")
            }
        }
        return result
    }
}

/// The MPI datatypes of Swift's numeric types.
enum LibraryDatatype {
    static func code<T>(of type: T.Type) -> Int32? {
        let code: Int? = switch type {
        case is Double.Type: FLEET_MPI_DOUBLE
        case is Float.Type: FLEET_MPI_FLOAT
        case is Int.Type where MemoryLayout<Int>.size == 8: FLEET_MPI_INT64
        case is Int64.Type: FLEET_MPI_INT64
        case is Int32.Type: FLEET_MPI_INT32
        case is Int16.Type: FLEET_MPI_INT16
        case is Int8.Type: FLEET_MPI_INT8
        case is UInt.Type where MemoryLayout<UInt>.size == 8: FLEET_MPI_UINT64
        case is UInt64.Type: FLEET_MPI_UINT64
        case is UInt32.Type: FLEET_MPI_UINT32
        case is UInt16.Type: FLEET_MPI_UINT16
        case is UInt8.Type: FLEET_MPI_UINT8
        default: nil
        }
        return code.map(Int32.init)
    }
}
