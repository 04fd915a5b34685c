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

/// A suite: the executable target `<module>Benchmarks` in its folder of that name, run by the
/// benchmark plugin, with the Fleet products it measures.
func suite(
    _ module: String, using products: [String] = [], extra: [Target.Dependency] = [],
    swiftSettings: [SwiftSetting]? = nil
) -> Target {
    .executableTarget(
        name: "\(module)Benchmarks",
        dependencies: [.product(name: "Benchmark", package: "benchmark"), .product(name: module, package: "Fleet")]
            + products.map { .product(name: $0, package: "Fleet") } + extra,
        path: "\(module)Benchmarks",
        swiftSettings: swiftSettings,
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

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
        suite("FleetWire", using: ["FleetExamples"], extra: [.product(name: "NIOCore", package: "swift-nio")]),
        suite("FleetActors", using: ["FleetWire", "FleetExamples"]),
        suite("FleetJobs", using: ["FleetExamples"]),
        suite("FleetMPI"),
        // Helpers and closures that take loop-bound values run on the caller's executor.
        suite("FleetCooperative", swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]),
    ],
    swiftLanguageModes: [.v6]
)
