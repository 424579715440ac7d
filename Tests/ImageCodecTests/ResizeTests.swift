import GKNetImageCodec
import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct ResizeTests {
    static let sizes = [(11, 13), (40, 57), (23, 16), (7, 31), (5, 4)]

    /// bilinear vs PyTorch (align_corners=False, no antialias), bicubic and lanczos3 vs Pillow's
    /// float-image resize, area vs an exact pixel-overlap reference: all within 2e-5 absolute.
    @Test(arguments: [ResizeFilter.bilinear, .bicubic, .lanczos3, .area])
    func matchesReference(filter: ResizeFilter) throws {
        let fixture = try Fixtures.load("images/resize.safetensors")
        let input = PlanarImage(tensor: try fixture.tensor("input"))
        for (height, width) in Self.sizes {
            let expected = try fixture.tensor("\(filter.rawValue)_\(height)x\(width)")
            let actual = input.resized(width: width, height: height, filter: filter)
            let c = compare(
                Tensor(shape: [3, height, width], data: actual.values), expected, relativeTolerance: 0,
                absoluteTolerance: 2e-5,
                label: "\(filter) \(height)x\(width)")
            #expect(c.passed, "\(c)")
        }
    }

    @Test func areaMatchesPyTorchAtIntegerRatios() throws {
        let fixture = try Fixtures.load("images/resize.safetensors")
        let input = PlanarImage(tensor: try fixture.tensor("integer_input"))
        let actual = input.resized(width: 10, height: 8, filter: .area)
        let c = compare(
            Tensor(shape: [3, 8, 10], data: actual.values), try fixture.tensor("integer_area_8x10"),
            relativeTolerance: 0, absoluteTolerance: 1e-6)
        #expect(c.passed, "\(c)")
        // automatic = area when shrinking
        #expect(input.resized(width: 10, height: 8, filter: .automatic) == actual)
    }

    @Test(arguments: ResizeFilter.allCases)
    func constantImageStaysConstant(filter: ResizeFilter) {
        let image = PlanarImage(width: 13, height: 7, channels: 2, repeating: 0.375)
        for (w, h) in [(5, 3), (29, 17), (13, 2)] {
            let out = image.resized(width: w, height: h, filter: filter)
            #expect(out.values.allSatisfy { abs($0 - 0.375) < 1e-6 }, "\(filter) \(w)x\(h)")
        }
    }

    @Test func sameSizeIsIdentity() {
        var generator = SplitMix64(seed: 3)
        let image = PlanarImage(width: 6, height: 4, channels: 3, values: (0..<72).map { _ in generator.nextUniform() })
        for filter in ResizeFilter.allCases { #expect(image.resized(width: 6, height: 4, filter: filter) == image) }
    }
}
