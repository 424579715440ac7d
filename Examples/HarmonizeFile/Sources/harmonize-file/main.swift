// harmonize-file COMPOSITE MASK OUTPUT: the composite's pasted-in region (white in the mask) made to
// match its background, with the model bundled in the library; background pixels stay exactly.
import Foundation
import GKNetInference

let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: harmonize-file COMPOSITE MASK OUTPUT.png\n".utf8))
    exit(2)
}
do {
    let harmonizer = try Harmonizer.bundled()
    let report = try harmonizer.harmonize(
        compositeFile: URL(fileURLWithPath: arguments[1]), maskFile: URL(fileURLWithPath: arguments[2]),
        output: URL(fileURLWithPath: arguments[3]))
    for warning in report.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
    print("wrote \(report.output.path) (\(report.width)x\(report.height))")
} catch {
    FileHandle.standardError.write(Data("harmonize-file: \(error)\n".utf8))
    exit(1)
}
