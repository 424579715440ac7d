import Foundation
// Fuzz target: iHarmony4 split lists and the composite -> mask -> real naming rule.
//
// Entry points reached by user input: `HarmonizationDataset(root:split:)` (list reading, line
// splitting, both list styles, name parsing, extension lookup on disk) and `load(_:limits:)` for
// the samples it resolves (decode, size agreement). Listing is tied to the file system, so the
// target builds a small fixed tree once and writes the fuzzed bytes as the split list:
//
//     <tmp>/HSub/{composite_images,masks,real_images}: a (8x8, valid), b (mask 4x4: size
//         mismatch), c (real image truncated), a second composite a_1_2.png of a
//     <tmp>/HOther/...: x (valid PNGs), with its own fixed HOther_train/test.txt
//
// The first input byte b picks the layout (b % 3: 0 = combined IHD_<split>.txt at the root,
// 1 = the subset folder as root with HSub_<split>.txt, 2 = the root without a combined list, so
// every subset's list is read) and the split ((b / 3) % 2: train, test); the rest is the list.
// Build and run: Fuzz/run.sh DatasetList (see docs/robustness.md).
import GKNetDatasets
import GKNetImageCodec

let root = FileManager.default.temporaryDirectory
    .appendingPathComponent("gknet-fuzz-dataset-\(ProcessInfo.processInfo.processIdentifier)")

/// Writes the fixed tree (once).
let tree: Void = {
    let manager = FileManager.default
    try? manager.removeItem(at: root)
    func image(_ size: Int, gray: Bool = false) -> RasterImage8 {
        let layout: PixelLayout = gray ? .gray : .rgb
        return RasterImage8(
            width: size, height: size, layout: layout,
            samples: (0..<(size * size * layout.channels)).map { UInt8(truncatingIfNeeded: $0 &* 37) })
    }
    func write(_ path: String, _ data: Data) {
        let url = root.appendingPathComponent(path)
        try! manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try! data.write(to: url)
    }
    let jpeg8 = try! ImageFile.encode(.eightBit(image(8)), format: .jpeg)
    let png8 = try! ImageFile.encode(.eightBit(image(8)), format: .png)
    let mask8 = try! ImageFile.encode(.eightBit(image(8, gray: true)), format: .png)
    let mask4 = try! ImageFile.encode(.eightBit(image(4, gray: true)), format: .png)
    write("HSub/composite_images/a_1_1.jpg", jpeg8)
    write("HSub/composite_images/a_1_2.png", png8)
    write("HSub/composite_images/b_2_1.jpg", jpeg8)
    write("HSub/composite_images/c_3_1.JPG", jpeg8)
    write("HSub/masks/a_1.png", mask8)
    write("HSub/masks/b_2.png", mask4)
    write("HSub/masks/c_3.png", mask8)
    write("HSub/real_images/a.jpg", jpeg8)
    write("HSub/real_images/b.jpeg", jpeg8)
    write("HSub/real_images/c.jpg", jpeg8.prefix(jpeg8.count / 2))
    write("HOther/composite_images/x_1_1.png", png8)
    write("HOther/masks/x_1.png", mask8)
    write("HOther/real_images/x.png", png8)
    write("HOther/HOther_train.txt", Data("x_1_1.png\n".utf8))
    write("HOther/HOther_test.txt", Data("x_1_1\n".utf8))
    atexit { try? FileManager.default.removeItem(at: root) }
}()

let listFiles = ["IHD_train.txt", "IHD_test.txt", "HSub/HSub_train.txt", "HSub/HSub_test.txt"]
    .map { root.appendingPathComponent($0) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = tree
    guard count >= 1 else { return 0 }
    let mode = Int(bytes[0]) % 3
    let split: DatasetSplit = (Int(bytes[0]) / 3) % 2 == 0 ? .train : .test
    let list = Data(bytes: bytes + 1, count: count - 1)
    for file in listFiles { unlink(file.path) }
    let datasetRoot = mode == 1 ? root.appendingPathComponent("HSub") : root
    let listURL =
        mode == 0
        ? root.appendingPathComponent("IHD_\(split.rawValue).txt")
        : root.appendingPathComponent("HSub/HSub_\(split.rawValue).txt")
    guard (try? list.write(to: listURL)) != nil else { fatalError("cannot write the list") }

    guard let dataset = try? HarmonizationDataset(root: datasetRoot, split: split) else { return 0 }
    for reference in dataset.samples {
        for url in [reference.composite, reference.mask, reference.real]
        where !FileManager.default.fileExists(atPath: url.path) {
            fatalError("resolved a file that does not exist: \(url.path)")
        }
    }
    for index in dataset.samples.indices.prefix(8) {
        _ = try? dataset.load(index, limits: DecodeLimits(maximumPixels: 1 << 16))
    }
    return 0
}
