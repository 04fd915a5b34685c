// swift-tools-version:6.1
//
// Fleet's package-benchmark suites, kept in their own package (as swift-nio does) so the
// benchmark dependency never reaches users of Fleet.
//
//   cd Benchmarks && swift package benchmark                           # every suite
//   cd Benchmarks && swift package benchmark --target FleetWireBenchmarks
//   cd Benchmarks && swift package benchmark --target FleetActorsBenchmarks
//   cd Benchmarks && swift package benchmark --target FleetJobsBenchmarks
//   cd Benchmarks && swift package benchmark --target FleetMPIBenchmarks
//   cd Benchmarks && swift package benchmark --target FleetCooperativeBenchmarks
//
// One executable target per Fleet module, each in `Benchmarks/<Module>Benchmarks/`.

import PackageDescription

let package = Package(
    name: "FleetBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Fleet", path: ".."),
        .package(
            url: "https://github.com/ordo-one/benchmark.git",
            exact: "1.38.1",
            traits: ["MallocInterposer"]
        ),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "FleetWireBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FleetWire", package: "Fleet"),
                .product(name: "FleetExamples", package: "Fleet"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "FleetWireBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "FleetActorsBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FleetActors", package: "Fleet"),
                .product(name: "FleetWire", package: "Fleet"),
                .product(name: "FleetExamples", package: "Fleet"),
            ],
            path: "FleetActorsBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "FleetJobsBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FleetJobs", package: "Fleet"),
                .product(name: "FleetExamples", package: "Fleet"),
            ],
            path: "FleetJobsBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "FleetMPIBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FleetMPI", package: "Fleet"),
            ],
            path: "FleetMPIBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "FleetCooperativeBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FleetCooperative", package: "Fleet"),
            ],
            path: "FleetCooperativeBenchmarks",
            // Helpers and closures that take loop-bound values run on the caller's executor.
            swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
