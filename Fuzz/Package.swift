// swift-tools-version:6.1
//
// libFuzzer targets for FleetWire's decoders. Build and run with `Fuzz/run` (it passes
// -sanitize=fuzzer,address); they are not part of the main package's build.

import PackageDescription

let package = Package(
    name: "FleetFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Fleet", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzSupport"),
        .executableTarget(
            name: "FuzzFrameDecoder",
            dependencies: [
                "FuzzSupport",
                .product(name: "FleetWire", package: "Fleet"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzBinaryDecoder",
            dependencies: [
                "FuzzSupport",
                .product(name: "FleetWire", package: "Fleet"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
