// The `gknet` command line: a thin layer over the Harmonization library.
import ArgumentParser
import TensorCore

@main
struct GKNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gknet",
        abstract: "Image harmonization with GKNet (Global-aware Kernel Network), on CPU.",
        version: "0.1.0",
        subcommands: [Harmonize.self, Evaluate.self, Train.self, Synthesize.self, Inspect.self, Export.self, Demo.self]
    )

    /// libgomp threads wait passively (no busy spinning; see OpenMPWaiting), then the command runs.
    static func main() {
        OpenMPWaiting.preferPassiveWaiting()
        main(nil)
    }
}

extension GKNetCommand {
    /// A one-line tensor demo (until `harmonize` exists): autograd on a tiny expression.
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a one-line autograd demo.")
        func run() throws {
            let x = Tensor(shape: [3], data: [1, 2, 3], requiresGrad: true)
            let y = (x * x * 2 + 1).sum()
            y.backward()
            print("y = sum(2x^2 + 1) at x = \(x.data) is \(y.item); dy/dx = \(x.grad ?? [])")
        }
    }
}
