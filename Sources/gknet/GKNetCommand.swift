// The `gknet` command line: a thin layer over the library modules (README "Layout").
import ArgumentParser
import TensorCore

@main
struct GKNetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gknet",
        abstract: "Image harmonization with GKNet (Global-aware Kernel Network), on CPU.",
        version: "0.1.0",
        subcommands: [
            Harmonize.self, Evaluate.self, Calibrate.self, Train.self, Synthesize.self, Inspect.self, Export.self,
            Serve.self,
        ]
    )

    /// libgomp threads wait passively (no busy spinning; see OpenMPWaiting), the runtime settings
    /// (thread counts, allocator) are applied, then the command runs.
    static func main() async {
        OpenMPWaiting.preferPassiveWaiting()
        RuntimeSettings.current.apply()
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
