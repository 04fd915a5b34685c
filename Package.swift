// swift-tools-version:6.1
//
// Fleet — parallel and distributed computing for Swift on Linux.
// See ARCHITECTURE (shared) and README.md for the map of modules.

import PackageDescription

let package = Package(
    name: "Fleet",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Fleet", targets: ["Fleet"]),
        .library(name: "FleetWire", targets: ["FleetWire"]),
        .library(name: "FleetActors", targets: ["FleetActors"]),
        .library(name: "FleetJobs", targets: ["FleetJobs"]),
        .library(name: "FleetMPI", targets: ["FleetMPI"]),
        .library(name: "FleetCooperative", targets: ["FleetCooperative"]),
        // The seed's programs and the measurements behind `fleet demo` / `fleet bench`, shared
        // with the Benchmarks package.
        .library(name: "FleetExamples", targets: ["FleetExamples"]),
        .executable(name: "fleet", targets: ["fleet"]),
        .executable(name: "message-threads", targets: ["MessageThreads"]),
        .executable(name: "waste-time", targets: ["WasteTime"]),
        .executable(name: "prime-service", targets: ["PrimeService"]),
        .executable(name: "sum-primes", targets: ["SumPrimes"]),
        .executable(name: "compute-pi", targets: ["ComputePi"]),
        .executable(name: "multitask-printer", targets: ["MultitaskPrinter"]),
        .executable(name: "multitask-echo", targets: ["MultitaskEcho"]),
    ],
    traits: [
        .trait(
            name: "MPI",
            description: "FleetMPI over the system's MPI library (OpenMPI, MPICH): programs run under mpirun or srun."
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // MARK: Library modules (arrows run downward only; see ARCHITECTURE.md)
        // glibc's pipe2, a GNU extension, for the output pipes of FleetWire's child processes.
        .target(name: "CFleetWire"),
        .target(
            name: "FleetWire",
            dependencies: [
                "CFleetWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FleetActors",
            dependencies: [
                "FleetWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FleetJobs",
            dependencies: [
                "FleetActors",
                "FleetWire",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The C part of FleetMPI; with the trait `MPI` it calls the system's MPI library
        // (OpenMPI or MPICH: `apt-get install libopenmpi-dev openmpi-bin`).
        .target(
            name: "CFleetMPI",
            cSettings: [.define("FLEET_MPI_LIBRARY", .when(traits: ["MPI"]))],
            linkerSettings: [.linkedLibrary("mpi", .when(traits: ["MPI"]))]
        ),
        .target(
            name: "FleetMPI",
            dependencies: [
                "CFleetMPI",
                "FleetWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "CFleetCooperative"),
        .target(
            name: "FleetCooperative",
            dependencies: [
                "CFleetCooperative",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            // Every async function of the module runs on its caller's executor — the loop's
            // thread — unless it says otherwise (SE-0461).
            swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        .target(
            name: "Fleet",
            dependencies: ["FleetWire", "FleetActors", "FleetJobs", "FleetMPI", "FleetCooperative"]
        ),

        // MARK: The CLI
        .executableTarget(
            name: "fleet",
            dependencies: [
                "Fleet",
                "FleetExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: The seed's examples, ported (Examples/)
        .target(name: "CWasteTime", path: "Examples/CWasteTime"),
        // `fleet bench echo`'s native load generator and reference C epoll echo server.
        .target(name: "CEchoBench", path: "Examples/CEchoBench"),
        .target(
            name: "FleetExamples",
            dependencies: [
                "CWasteTime", "CEchoBench", "FleetWire", "FleetActors", "FleetJobs", "FleetMPI", "FleetCooperative",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Examples/FleetExamples"
        ),
        .executableTarget(
            name: "MessageThreads",
            dependencies: [
                "FleetExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/MessageThreads"
        ),
        .executableTarget(
            name: "WasteTime",
            dependencies: [
                "FleetExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/WasteTime"
        ),

        .executableTarget(
            name: "PrimeService",
            dependencies: [
                "FleetExamples",
                "FleetActors",
                "FleetWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/PrimeService"
        ),

        .executableTarget(
            name: "SumPrimes",
            dependencies: [
                "FleetExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/SumPrimes"
        ),

        .executableTarget(
            name: "ComputePi",
            dependencies: [
                "FleetExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/ComputePi"
        ),

        .executableTarget(
            name: "MultitaskPrinter",
            dependencies: [
                "FleetExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/MultitaskPrinter"
        ),

        .executableTarget(
            name: "MultitaskEcho",
            dependencies: [
                "FleetExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/MultitaskEcho"
        ),

        // MARK: Tests
        .testTarget(
            name: "FleetWireTests",
            dependencies: [
                "FleetWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .target(name: "FleetActorsTestSupport", dependencies: ["FleetActors", "FleetWire"], path: "Tests/FleetActorsTestSupport"),
        .executableTarget(
            name: "ActorTestPeer",
            dependencies: ["FleetActorsTestSupport", "FleetActors", "FleetWire"],
            path: "Tests/ActorTestPeer"
        ),
        .testTarget(name: "FleetActorsTests", dependencies: ["FleetActors", "FleetActorsTestSupport", "FleetWire"]),
        .executableTarget(name: "JobTestPeer", dependencies: ["FleetJobs"], path: "Tests/JobTestPeer"),
        .testTarget(name: "FleetJobsTests", dependencies: ["FleetJobs", "FleetActors", "FleetActorsTestSupport", "FleetWire"]),
        .testTarget(
            name: "FleetMPITests",
            dependencies: [
                "FleetMPI", "CFleetMPI", "FleetWire", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .executableTarget(name: "MPITestPeer", dependencies: ["Fleet", "FleetMPI", "FleetWire"], path: "Tests/MPITestPeer"),
        .testTarget(
            name: "FleetCooperativeTests",
            dependencies: ["FleetCooperative", .product(name: "NIOCore", package: "swift-nio")],
            // Helpers and closures that take loop-bound values run on the caller's executor.
            swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        .testTarget(name: "FleetTests", dependencies: ["Fleet"]),
        .testTarget(name: "FleetExamplesTests", dependencies: ["FleetExamples", "CWasteTime", "CEchoBench", "FleetCooperative"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["FleetWire", "FleetActors", "FleetActorsTestSupport", "FleetExamples"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
