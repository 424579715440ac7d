// The page and the API description, shipped as resources of this module
// (Sources/GKNetServe/Resources) and read once: from `share/gknet/` beside an installed executable
// (`make install` puts them there), else from the build's resource bundle.
import Foundation

enum PageAssets {
    static let indexHTML = load("index", "html")
    static let openAPI = load("openapi", "yaml")

    private static func load(_ name: String, _ extensionName: String) -> String {
        let executable = (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments.first ?? "."))
            .resolvingSymlinksInPath()
        let installed = executable.deletingLastPathComponent()
            .appendingPathComponent("../share/gknet/\(name).\(extensionName)").standardizedFileURL
        let url =
            FileManager.default.fileExists(atPath: installed.path)
            ? installed : Bundle.module.url(forResource: name, withExtension: extensionName)
        guard let url, let text = try? String(contentsOf: url, encoding: .utf8) else {
            return "\(name).\(extensionName) is missing from this build (Sources/GKNetServe/Resources)"
        }
        return text
    }
}
