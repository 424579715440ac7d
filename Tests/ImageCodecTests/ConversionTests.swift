import GKNetImageCodec
import GKNetTensorCore
import Testing

@Suite struct ConversionTests {
    @Test func grayBecomesThreeEqualChannels() {
        let gray = RasterImage8(width: 2, height: 1, layout: .gray, samples: [0, 255])
        let rgb = PlanarImage(rgb: gray)
        #expect(rgb.channels == 3)
        #expect(rgb.values == [0, 1, 0, 1, 0, 1])
        #expect(rgb.tensor().shape == [1, 3, 1, 2])
    }

    @Test func rgbaDropsAlphaAndKeepsColours() {
        let rgba = RasterImage8(width: 1, height: 1, layout: .rgba, samples: [51, 102, 255, 0])
        #expect(PlanarImage(rgb: rgba).values == [0.2, 0.4, 1])
    }

    @Test func masksFromFirstChannelLuminanceOrAlpha() {
        let rgb = RasterImage8(width: 1, height: 1, layout: .rgba, samples: [255, 0, 0, 51])
        #expect(PlanarImage(mask: rgb).values == [1])
        #expect(abs(PlanarImage(mask: rgb, source: .luminance).values[0] - 0.299) < 1e-6)
        #expect(PlanarImage(mask: rgb, source: .alpha).values == [0.2])
        let sixteen = RasterImage16(width: 2, height: 1, layout: .gray, samples: [0, 65535])
        #expect(PlanarImage(mask: sixteen).values == [0, 1])
        #expect(PlanarImage(mask: sixteen).tensor().shape == [1, 1, 1, 2])
    }

    @Test func quantizationRoundTripsEveryLevel() {
        let levels = RasterImage8(width: 256, height: 1, layout: .gray, samples: (0...255).map { UInt8($0) })
        #expect(PlanarImage(mask: levels).raster8() == levels)
        let wide = RasterImage16(width: 4, height: 1, layout: .gray, samples: [0, 1, 40000, 65535])
        #expect(PlanarImage(mask: wide).raster16() == wide)
    }

    @Test func tensorRoundTrip() {
        let image = PlanarImage(width: 3, height: 2, channels: 3, values: (0..<18).map { Float($0) / 17 })
        let batch = PlanarImage.batchTensor([image, image.clamped()])
        #expect(batch.shape == [2, 3, 2, 3])
        #expect(PlanarImage(tensor: batch, index: 1) == image)
    }
}
