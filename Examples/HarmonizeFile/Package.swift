// swift-tools-version:6.0
// An example of using GKNet from another Swift package: `harmonize-file COMPOSITE MASK OUTPUT`
// harmonizes one image with the bundled default model. It depends on the project by relative path;
// a package of your own would name the repository's URL and a version instead.
import PackageDescription

let package = Package(
    name: "HarmonizeFile",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "GKNet", path: "../..")
    ],
    targets: [
        .executableTarget(
            name: "harmonize-file",
            dependencies: [.product(name: "GKNetHarmonization", package: "GKNet")]
        )
    ]
)
