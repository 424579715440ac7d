// The `gknet` command line: a thin layer over the library modules (README "Layout").
import ArgumentParser
import Foundation
import GKNetInference
import GKNetTensorCore

@main
struct GKNetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gknet",
        abstract: "Image harmonization with GKNet (Global-aware Kernel Network), on CPU.",
        version: GKNetCommand.version,
        subcommands: [
            Harmonize.self, Evaluate.self, Calibrate.self, Train.self, Synthesize.self, Inspect.self, Export.self,
            Serve.self,
        ]
    )

    /// The version of this build (the model's identity is added by `gknet --version`).
    static let version = "0.1.0"

    /// `gknet --version`: the version, then the default model this binary finds (name, images
    /// seen, checksum, where it is), or why it finds none.
    static func versionText() -> String {
        var lines = ["gknet \(version)"]
        do {
            let url = try ModelLoading.defaultModelURL()
            lines.append("default model: \(try ModelIdentity(url: url))")
            lines.append("  at \(url.path)")
        } catch {
            lines.append("default model: none found (\(error))")
        }
        return lines.joined(separator: "\n")
    }

    /// The start-up environment (libgomp waits passively, OpenBLAS runs the processor's kernels; see
    /// StartupEnvironment), the runtime settings
    /// (thread counts, allocator) are applied, then the command runs.
    static func main() async {
        StartupEnvironment.prepare()
        RuntimeSettings.current.apply()
        if Array(CommandLine.arguments.dropFirst()) == ["--version"] {
            print(versionText())
            return
        }
        do {
            var command = try parseAsRoot(nil)
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
