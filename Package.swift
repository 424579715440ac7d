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
        // For other Swift packages: load the bundled model or a file, harmonize files, encoded
        // images or planar images (README "Use it from Swift", Examples/HarmonizeFile).
        .library(name: "GKNetHarmonization", targets: ["Inference", "ImageCodec", "GKNetModel"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "NeuralNet", targets: ["NeuralNet"]),
        .library(name: "GKNetModel", targets: ["GKNetModel"]),
        .library(name: "ImageCodec", targets: ["ImageCodec"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Synthesis", targets: ["Synthesis"]),
        .library(name: "Inference", targets: ["Inference"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "DataParallel", targets: ["DataParallel"]),
        .library(name: "GKNetServe", targets: ["GKNetServe"]),
        .executable(name: "gknet", targets: ["gknet"]),
        .executable(name: "gknet-bench", targets: ["gknet-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Public API
        .target(
            name: "TensorCore",
            dependencies: blasDependency + ["CDNNL"]
        ),
        .target(name: "NeuralNet", dependencies: ["TensorCore"]),
        .target(name: "GKNetModel", dependencies: ["TensorCore", "NeuralNet"]),
        .target(name: "ImageCodec", dependencies: ["TensorCore", "CPNG", "CJPEG", "CZlib"]),
        // Harmonization, one module per job (README "Layout"); each imports only what is listed.
        .target(name: "Datasets", dependencies: ["TensorCore", "ImageCodec"]),
        .target(name: "Synthesis", dependencies: ["TensorCore", "ImageCodec", "Datasets"]),
        // The library's harmonize path; the default model is its resource (Models/ links to it).
        .target(
            name: "Inference", dependencies: ["TensorCore", "NeuralNet", "GKNetModel", "ImageCodec"],
            resources: [.copy("Resources/gknet-default.safetensors")]
        ),
        .target(name: "Evaluation", dependencies: ["ImageCodec", "Datasets", "Inference"]),
        // The processes of a data-parallel job (Open MPI; a job of one without mpirun).
        .target(name: "DataParallel", dependencies: ["CMPI"]),
        .target(
            name: "Training",
            dependencies: [
                "TensorCore", "NeuralNet", "GKNetModel", "ImageCodec", "Datasets", "Synthesis", "Inference",
                "Evaluation", "DataParallel",
            ]
        ),
        // Multipart form bodies read as they arrive (multipart-kit), with limits; no HTTP server.
        .target(
            name: "RequestForms",
            dependencies: [
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The web service: a thin HTTP layer over Inference.
        .target(
            name: "GKNetServe",
            dependencies: [
                "GKNetModel", "ImageCodec", "Inference", "RequestForms",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            resources: [.copy("Resources/index.html"), .copy("Resources/openapi.yaml")]
        ),

        // MARK: - Implementation details
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-openmp-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"]), .brew(["open-mpi"])]),
        .target(name: "_TestSupport", dependencies: ["TensorCore"]),

        // MARK: - Executables
        .executableTarget(
            name: "gknet",
            dependencies: [
                "TensorCore", "NeuralNet", "GKNetModel", "ImageCodec",
                "Datasets", "Synthesis", "Inference", "Evaluation", "Training", "GKNetServe", "DataParallel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "gknet-bench",
            dependencies: [
                "TensorCore", "NeuralNet", "GKNetModel", "ImageCodec", "Datasets", "Inference", "Evaluation",
                "DataParallel", "_TestSupport",
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
            dependencies: [
                "TensorCore", "NeuralNet", "GKNetModel", "ImageCodec",
                "Datasets", "Synthesis", "Inference", "Evaluation", "Training", "_TestSupport",
            ]
        ),
        .testTarget(
            name: "CLITests", dependencies: ["TensorCore", "GKNetModel", "NeuralNet", "ImageCodec", "_TestSupport"]),
        .testTarget(
            name: "ServeTests",
            dependencies: [
                "GKNetServe", "RequestForms", "TensorCore", "GKNetModel", "NeuralNet", "ImageCodec", "_TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
)
