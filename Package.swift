// swift-tools-version:6.0
// GKNet in Swift: image harmonization with a global-aware kernel network, on CPU.
import PackageDescription

let blasDependency: [Target.Dependency] = [
    .target(name: "CGKNetBLAS", condition: .when(platforms: [.linux]))
]

let package = Package(
    name: "GKNet",
    platforms: [.macOS(.v14)],
    products: [
        // For other Swift packages: load the bundled model or a file, harmonize files, encoded
        // images or planar images (README "Use it from Swift", Examples/HarmonizeFile).
        .library(name: "GKNetHarmonization", targets: ["GKNetInference", "GKNetImageCodec", "GKNetModel"]),
        .library(name: "GKNetTensorCore", targets: ["GKNetTensorCore"]),
        .library(name: "GKNetNeuralNet", targets: ["GKNetNeuralNet"]),
        .library(name: "GKNetModel", targets: ["GKNetModel"]),
        .library(name: "GKNetImageCodec", targets: ["GKNetImageCodec"]),
        .library(name: "GKNetDatasets", targets: ["GKNetDatasets"]),
        .library(name: "GKNetSynthesis", targets: ["GKNetSynthesis"]),
        .library(name: "GKNetInference", targets: ["GKNetInference"]),
        .library(name: "GKNetEvaluation", targets: ["GKNetEvaluation"]),
        .library(name: "GKNetTraining", targets: ["GKNetTraining"]),
        .library(name: "GKNetDataParallel", targets: ["GKNetDataParallel"]),
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
            name: "GKNetTensorCore",
            dependencies: blasDependency + ["CGKNetDNNL"]
        ),
        .target(name: "GKNetNeuralNet", dependencies: ["GKNetTensorCore"]),
        .target(name: "GKNetModel", dependencies: ["GKNetTensorCore", "GKNetNeuralNet"]),
        .target(name: "GKNetImageCodec", dependencies: ["GKNetTensorCore", "CGKNetPNG", "CGKNetJPEG", "CGKNetZlib"]),
        // Harmonization, one module per job (README "Layout"); each imports only what is listed.
        .target(name: "GKNetDatasets", dependencies: ["GKNetTensorCore", "GKNetImageCodec"]),
        .target(name: "GKNetSynthesis", dependencies: ["GKNetTensorCore", "GKNetImageCodec", "GKNetDatasets"]),
        // The library's harmonize path; the default model is its resource (Models/ links to it).
        .target(
            name: "GKNetInference",
            dependencies: ["GKNetTensorCore", "GKNetNeuralNet", "GKNetModel", "GKNetImageCodec"],
            resources: [.copy("Resources/gknet-default.safetensors")]
        ),
        .target(
            name: "GKNetEvaluation",
            dependencies: ["GKNetTensorCore", "GKNetImageCodec", "GKNetDatasets", "GKNetInference"]),
        // The processes of a data-parallel job (Open MPI; a job of one without mpirun).
        .target(name: "GKNetDataParallel", dependencies: ["CGKNetMPI"]),
        .target(
            name: "GKNetTraining",
            dependencies: [
                "GKNetTensorCore", "GKNetNeuralNet", "GKNetModel", "GKNetImageCodec", "GKNetDatasets", "GKNetSynthesis",
                "GKNetInference",
                "GKNetEvaluation", "GKNetDataParallel",
            ]
        ),
        // Multipart form bodies read as they arrive (multipart-kit), with limits; no HTTP server.
        .target(
            name: "GKNetRequestForms",
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
                "GKNetTensorCore", "GKNetModel", "GKNetImageCodec", "GKNetInference", "GKNetRequestForms",
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
        .systemLibrary(name: "CGKNetBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-openmp-dev"])]),
        .systemLibrary(name: "CGKNetDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CGKNetPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CGKNetJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CGKNetZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CGKNetMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"]), .brew(["open-mpi"])]),
        .target(name: "GKNetTestSupport", dependencies: ["GKNetTensorCore"]),

        // MARK: - Executables
        .executableTarget(
            name: "gknet",
            dependencies: [
                "GKNetTensorCore", "GKNetNeuralNet", "GKNetModel", "GKNetImageCodec",
                "GKNetDatasets", "GKNetSynthesis", "GKNetInference", "GKNetEvaluation", "GKNetTraining", "GKNetServe",
                "GKNetDataParallel",
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
                "GKNetTensorCore", "GKNetNeuralNet", "GKNetModel", "GKNetImageCodec", "GKNetDatasets", "GKNetInference",
                "GKNetEvaluation", "GKNetTraining", "GKNetSynthesis",
                "GKNetDataParallel", "GKNetTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: - Unit test bundles
        .testTarget(name: "TensorCoreTests", dependencies: ["GKNetTensorCore", "GKNetTestSupport"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["GKNetNeuralNet", "GKNetTestSupport"]),
        .testTarget(name: "GKNetModelTests", dependencies: ["GKNetModel", "GKNetNeuralNet", "GKNetTestSupport"]),
        .testTarget(name: "ImageCodecTests", dependencies: ["GKNetImageCodec", "GKNetTestSupport"]),
        .testTarget(
            name: "HarmonizationTests",
            dependencies: [
                "GKNetTensorCore", "GKNetNeuralNet", "GKNetModel", "GKNetImageCodec",
                "GKNetDatasets", "GKNetSynthesis", "GKNetInference", "GKNetEvaluation", "GKNetTraining",
                "GKNetTestSupport",
            ]
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["GKNetTensorCore", "GKNetModel", "GKNetNeuralNet", "GKNetImageCodec", "GKNetTestSupport"]),
        .testTarget(
            name: "ServeTests",
            dependencies: [
                "GKNetServe", "GKNetRequestForms", "GKNetInference", "GKNetTensorCore", "GKNetModel", "GKNetNeuralNet",
                "GKNetImageCodec",
                "GKNetTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
)
