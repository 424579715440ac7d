// Colour spaces of PlanarImage: the sRGB transfer function and CIE Lab (D65), used by composite
// synthesis (colour transfer, photo adjustments) and the Reinhard baseline of evaluation.
import Foundation

/// sRGB transfer functions and sRGB <-> CIE Lab (D65 white) on planar images.
public enum ColorSpace {
    /// sRGB transfer function, decoding: display value -> linear light.
    @inlinable public static func linear(_ c: Float) -> Float {
        c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4)
    }

    /// sRGB transfer function, encoding: linear light -> display value.
    @inlinable public static func display(_ c: Float) -> Float {
        c <= 0.003_130_8 ? 12.92 * c : 1.055 * pow(c, 1 / 2.4) - 0.055
    }

    private static let delta: Float = 6.0 / 29.0

    @inline(__always) private static func f(_ t: Float) -> Float {
        t > delta * delta * delta ? cbrt(t) : t / (3 * delta * delta) + 4.0 / 29.0
    }

    @inline(__always) private static func fInverse(_ t: Float) -> Float {
        t > delta ? t * t * t : 3 * delta * delta * (t - 4.0 / 29.0)
    }

    /// One pixel: sRGB (0...1) -> Lab (L 0...100, a and b roughly -110...110), D65 white.
    @inline(__always) public static func lab(red: Float, green: Float, blue: Float) -> (Float, Float, Float) {
        let r = linear(red), g = linear(green), b = linear(blue)
        let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47
        let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175_0 * b
        let z = (0.019_333_9 * r + 0.119_192_0 * g + 0.950_304_1 * b) / 1.088_83
        let fx = f(x), fy = f(y), fz = f(z)
        return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))
    }

    /// One pixel: Lab -> sRGB (0...1), clamped to the gamut.
    @inline(__always) public static func rgb(lightness: Float, a: Float, b: Float) -> (Float, Float, Float) {
        let fy = (lightness + 16) / 116
        let fx = fy + a / 500
        let fz = fy - b / 200
        let x = fInverse(fx) * 0.950_47, y = fInverse(fy), z = fInverse(fz) * 1.088_83
        let r = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z
        let g = -0.969_266_0 * x + 1.876_010_8 * y + 0.041_556_0 * z
        let bl = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z
        return (display(min(max(r, 0), 1)), display(min(max(g, 0), 1)), display(min(max(bl, 0), 1)))
    }

    /// RGB (0...1, sRGB) -> Lab planes (L 0...100, a and b roughly -110...110), D65 white.
    public static func lab(fromRGB image: PlanarImage) -> PlanarImage {
        precondition(image.channels == 3, "lab(fromRGB:): \(image.channels) channels, expected 3")
        let n = image.planeSize
        var out = [Float](repeating: 0, count: 3 * n)
        image.values.withUnsafeBufferPointer { rgb in
            for p in 0..<n {
                (out[p], out[n + p], out[2 * n + p]) = lab(red: rgb[p], green: rgb[n + p], blue: rgb[2 * n + p])
            }
        }
        return PlanarImage(width: image.width, height: image.height, channels: 3, values: out)
    }

    /// Lab -> RGB (0...1, sRGB), clamped to the gamut.
    public static func rgb(fromLab image: PlanarImage) -> PlanarImage {
        let n = image.planeSize
        var out = [Float](repeating: 0, count: 3 * n)
        image.values.withUnsafeBufferPointer { lab in
            for p in 0..<n {
                (out[p], out[n + p], out[2 * n + p]) = rgb(lightness: lab[p], a: lab[n + p], b: lab[2 * n + p])
            }
        }
        return PlanarImage(width: image.width, height: image.height, channels: 3, values: out)
    }
}
