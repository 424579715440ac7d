// Pasting an object into a background photo: the composite and mask that `POST /v1/compose`
// harmonizes, so a user can place an object and get it harmonized in one call.
import Foundation
import GKNetImageCodec

/// Where the object goes: its top-left corner at (x, y) in background pixels, scaled by `scale`.
public struct Placement: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var scale: Double

    public init(x: Double, y: Double, scale: Double) {
        self.x = x
        self.y = y
        self.scale = scale
    }
}

public enum Compositing {
    /// The largest scaled object side, in pixels.
    public static let maximumObjectSide = 16384

    /// Pastes `object` (3 x h x w) with its `objectMask` (1 x h x w, soft allowed) into
    /// `background` (3 x H x W) at `placement`.
    /// - Returns: the composite (3 x H x W) and its mask (1 x H x W): the object's mask where it
    ///   landed, 0 elsewhere. Parts of the object outside the background are cut off.
    public static func paste(
        object: PlanarImage, objectMask: PlanarImage, into background: PlanarImage, at placement: Placement
    )
        -> (composite: PlanarImage, mask: PlanarImage)
    {
        precondition(
            object.channels == 3 && background.channels == 3 && objectMask.channels == 1,
            "paste: RGB object and background, 1-channel mask")
        precondition(
            object.width == objectMask.width && object.height == objectMask.height,
            "paste: object and mask sizes differ")
        let width = min(maximumObjectSide, max(1, Int((Double(object.width) * placement.scale).rounded())))
        let height = min(maximumObjectSide, max(1, Int((Double(object.height) * placement.scale).rounded())))
        let scaled =
            width == object.width && height == object.height
            ? object : object.resized(width: width, height: height, filter: .automatic)
        let scaledMask =
            width == objectMask.width && height == objectMask.height
            ? objectMask : objectMask.resized(width: width, height: height, filter: .automatic).clamped()
        let left = Int(placement.x.rounded()), top = Int(placement.y.rounded())
        var composite = background
        var mask = PlanarImage(
            width: background.width, height: background.height, channels: 1,
            values: [Float](repeating: 0, count: background.planeSize))
        let plane = background.planeSize, objectPlane = scaled.planeSize
        let (firstRow, endRow) = (max(0, top), min(background.height, top + height))
        let (firstColumn, endColumn) = (max(0, left), min(background.width, left + width))
        // an object placed entirely outside the background leaves an empty mask
        guard firstRow < endRow && firstColumn < endColumn else { return (composite, mask) }
        let (rows, columns) = (firstRow..<endRow, firstColumn..<endColumn)
        for y in rows {
            for x in columns {
                let source = (y - top) * width + (x - left), target = y * background.width + x
                let alpha = scaledMask.values[source]
                guard alpha > 0 else { continue }
                mask.values[target] = alpha
                for c in 0..<3 {
                    let value = scaled.values[c * objectPlane + source]
                    composite.values[c * plane + target] =
                        alpha * value + (1 - alpha) * background.values[c * plane + target]
                }
            }
        }
        return (composite, mask)
    }
}
