// The page and the API description, shipped as resources of this module
// (Sources/GKNetServe/Resources) and read once.
import Foundation

enum PageAssets {
    static let indexHTML = load("index", "html")
    static let openAPI = load("openapi", "yaml")

    private static func load(_ name: String, _ extensionName: String) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: extensionName),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else {
            return "\(name).\(extensionName) is missing from this build (Sources/GKNetServe/Resources)"
        }
        return text
    }
}
