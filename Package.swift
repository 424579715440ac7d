// swift-tools-version:6.0
// GKNet in Swift: image harmonization with a global-aware kernel network, on CPU.
import PackageDescription

let blasDependency: [Target.Dependency] = [
    .target(name: "CBLAS", condition: .when(platforms: [.linux]))
]

let package = Package(
    name: "GKNet",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "NeuralNet", targets: ["NeuralNet"]),
        .library(name: "GKNetModel", targets: ["GKNetModel"]),
        .library(name: "ImageCodec", targets: ["ImageCodec"]),
        .library(name: "Harmonization", targets: ["Harmonization"]),
        .executable(name: "gknet", targets: ["gknet"]),
        .executable(name: "gknet-bench", targets: ["gknet-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // MARK: - Public API
        .target(
            name: "TensorCore",
            dependencies: blasDependency + ["CDNNL"]
        ),
        .target(name: "NeuralNet", dependencies: ["TensorCore"]),
        .target(name: "GKNetModel", dependencies: ["TensorCore", "NeuralNet"]),
        .target(name: "ImageCodec", dependencies: ["TensorCore", "CPNG", "CJPEG"]),
        .target(
            name: "Harmonization",
            dependencies: ["TensorCore", "NeuralNet", "GKNetModel", "ImageCodec", "CZlib"]
        ),

        // MARK: - Implementation details
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-openmp-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "_TestSupport", dependencies: ["TensorCore"]),

        // MARK: - Executables
        .executableTarget(
            name: "gknet",
            dependencies: [
                "Harmonization", "GKNetModel", "NeuralNet", "ImageCodec", "TensorCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "gknet-bench",
            dependencies: [
                "Harmonization", "GKNetModel", "NeuralNet", "ImageCodec", "TensorCore", "_TestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: - Unit test bundles
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "_TestSupport"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "_TestSupport"]),
        .testTarget(name: "GKNetModelTests", dependencies: ["GKNetModel", "NeuralNet", "_TestSupport"]),
        .testTarget(name: "ImageCodecTests", dependencies: ["ImageCodec", "_TestSupport"]),
        .testTarget(
            name: "HarmonizationTests",
            dependencies: ["Harmonization", "ImageCodec", "GKNetModel", "NeuralNet", "_TestSupport"]
        ),
        .testTarget(name: "CLITests", dependencies: ["Harmonization", "GKNetModel", "NeuralNet", "ImageCodec", "_TestSupport"]),
    ]
)
