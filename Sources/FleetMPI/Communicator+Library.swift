import CFleetMPI

/// On an MPI library (the trait `MPI`, under `mpirun` or `srun`) whose messages travel through
/// it (between hosts), the world communicator's barrier and its allreduces of numbers with the
/// built-in operations are the library's own `MPI_Barrier` and `MPI_Allreduce`: its algorithms,
/// tuned for its transports. Everything else — Codable values, custom operations,
/// sub-communicators — runs FleetMPI's algorithms over the library's point-to-point messages.
/// With every rank on one host, messages travel through FleetMPI's rings and so do all the
/// collectives: a call that blocks in the library would stop the rings meanwhile (a message
/// still waiting for room would never be written).
extension Communicator {
    /// Whether this is the world communicator of a job on an MPI library whose own collectives
    /// serve it.
    var isLibraryWorld: Bool { world.usesLibraryCollectives && context == Communicator.worldContext }

    /// The MPI library's own ping-pong with `peer`, for benchmarks to hold FleetMPI's against in
    /// the same run: `count` round trips of one `Double` made with `MPI_Send` and `MPI_Recv`, as
    /// a C program makes them (on `MPI_COMM_WORLD`, with an MPI tag FleetMPI's messages never
    /// use). The two ranks call it together, with none of FleetMPI's messages between them in
    /// flight. It blocks the rank's loop until the round trips are done, with no timeout: a
    /// benchmark's tool, not an operation. Returns the time one way, or `nil` when this is not
    /// the world communicator of a job on an MPI library.
    nonisolated(nonsending) package func libraryPingPong(with peer: Int, count: Int) async throws -> Duration? {
        guard world.usesLibrary, context == Communicator.worldContext else { return nil }
        try checkOpen()
        let target = try worldRank(of: peer)
        guard target != world.rank, count > 0, count <= Int(Int32.max) else {
            throw CommunicatorError.invalidArgument("a ping-pong needs another rank and a count of round trips")
        }
        let seconds = try await onLoop {
            var seconds = 0.0
            try LibraryLinks.check(
                fleet_mpi_baseline_pingpong(Int32(target), Int32(count), world.rank < target ? 1 : 0, &seconds), "the library's ping-pong")
            return seconds
        }
        return .seconds(seconds / Double(2 * count))
    }

    /// `MPI_Barrier` on the rank's loop, when the library serves this communicator; else
    /// `false`. (``barrier()`` calls the library itself when it runs on the loop already.)
    nonisolated(nonsending) func libraryBarrier() async throws -> Bool {
        guard isLibraryWorld else { return false }
        try await onLoop { try LibraryLinks.barrier() }
        return true
    }

    /// The library's datatype and operation codes for an allreduce of `count` elements of `T`
    /// with `operation`, when the library serves this communicator, the operation is a built-in
    /// and `T` a number MPI knows; else `nil`.
    private func libraryReduction<T>(of _: T.Type, _ operation: Reduction<T>, count: Int) -> (type: Int32, operation: Int32)? {
        guard isLibraryWorld, let builtin = operation.builtin, let type = LibraryDatatype.code(of: T.self),
              count <= Int(Int32.max) else { return nil }
        let code: Int32 = switch builtin {
        case .sum: Int32(FLEET_MPI_SUM)
        case .prod: Int32(FLEET_MPI_PROD)
        case .min: Int32(FLEET_MPI_MIN)
        case .max: Int32(FLEET_MPI_MAX)
        }
        return (type, code)
    }

    /// `MPI_Allreduce` of one number, `value`, in place, when the library serves it and this
    /// runs on the rank's loop (under ``withWorld(configuration:_:)``): a plain call, with no
    /// async frame around it. Else `false`, and `value` untouched.
    func libraryAllreduceOnLoop<T: Sendable>(_ value: inout T, _ operation: Reduction<T>) throws -> Bool {
        guard isLibraryWorld, world.isOnLoop, let codes = libraryReduction(of: T.self, operation, count: 1) else { return false }
        // `T` is one of the plain numeric types `LibraryDatatype` names.
        try withUnsafeMutablePointer(to: &value) { try LibraryLinks.allreduce(nil, into: $0, count: 1, codes) }
        return true
    }

    /// ``libraryAllreduceOnLoop(_:_:)`` from off the loop: on the loop, when the library serves
    /// the reduction; else `false`, and `value` untouched.
    nonisolated(nonsending) func libraryAllreduce<T: Sendable>(_ value: inout T, _ operation: Reduction<T>) async throws -> Bool {
        guard isLibraryWorld, libraryReduction(of: T.self, operation, count: 1) != nil else { return false }
        return try await onLoop { try libraryAllreduceOnLoop(&value, operation) }
    }

    /// `MPI_Allreduce` of `values` into a new array, when the library serves it; else `nil`.
    /// The library reads `values` and writes the result array: no copy of either.
    nonisolated(nonsending) func libraryAllreduce<T: Sendable>(_ values: [T], _ operation: Reduction<T>) async throws -> [T]? {
        guard let codes = libraryReduction(of: T.self, operation, count: values.count) else { return nil }
        return try await onLoop {
            try [T](unsafeUninitializedCapacity: values.count) { result, initialized in
                // `T` is one of the plain numeric types `LibraryDatatype` names.
                try values.withUnsafeBufferPointer { try LibraryLinks.allreduce($0.baseAddress, into: result.baseAddress, count: values.count, codes) }
                initialized = values.count
            }
        }
    }

    /// `MPI_Allreduce` from `values` into `result` (as long), when the library serves it; else
    /// `false`, with `result` untouched.
    nonisolated(nonsending) func libraryAllreduce<T: Sendable>(_ values: [T], into result: inout [T], _ operation: Reduction<T>) async throws -> Bool {
        guard let codes = libraryReduction(of: T.self, operation, count: values.count) else { return false }
        try await onLoop {
            try result.withUnsafeMutableBufferPointer { target in
                // `T` is one of the plain numeric types `LibraryDatatype` names.
                try values.withUnsafeBufferPointer { try LibraryLinks.allreduce($0.baseAddress, into: target.baseAddress, count: values.count, codes) }
            }
        }
        return true
    }

    /// `MPI_Allreduce` with `MPI_IN_PLACE` in `values`' own memory, when the library serves it;
    /// else `false`, with `values` untouched.
    nonisolated(nonsending) func libraryAllreduce<T: Sendable>(inPlace values: inout [T], _ operation: Reduction<T>) async throws -> Bool {
        guard let codes = libraryReduction(of: T.self, operation, count: values.count) else { return false }
        try await onLoop {
            try values.withUnsafeMutableBufferPointer { try LibraryLinks.allreduce(nil, into: $0.baseAddress, count: $0.count, codes) }
        }
        return true
    }
}

/// The MPI datatypes of Swift's numeric types.
enum LibraryDatatype {
    /// The datatype code of `T`, or `nil`. Compares metatypes by identity: a generic caller
    /// pays a few pointer comparisons per collective, not dynamic casts.
    static func code<T>(of type: T.Type) -> Int32? {
        let code: Int? = switch ObjectIdentifier(type) {
        case ObjectIdentifier(Double.self): FLEET_MPI_DOUBLE
        case ObjectIdentifier(Float.self): FLEET_MPI_FLOAT
        case ObjectIdentifier(Int.self) where MemoryLayout<Int>.size == 8: FLEET_MPI_INT64
        case ObjectIdentifier(Int64.self): FLEET_MPI_INT64
        case ObjectIdentifier(Int32.self): FLEET_MPI_INT32
        case ObjectIdentifier(Int16.self): FLEET_MPI_INT16
        case ObjectIdentifier(Int8.self): FLEET_MPI_INT8
        case ObjectIdentifier(UInt.self) where MemoryLayout<UInt>.size == 8: FLEET_MPI_UINT64
        case ObjectIdentifier(UInt64.self): FLEET_MPI_UINT64
        case ObjectIdentifier(UInt32.self): FLEET_MPI_UINT32
        case ObjectIdentifier(UInt16.self): FLEET_MPI_UINT16
        case ObjectIdentifier(UInt8.self): FLEET_MPI_UINT8
        default: nil
        }
        return code.map(Int32.init)
    }
}
