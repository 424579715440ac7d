// A deterministic share of a list for one of several workers (`gknet harmonize --shard i/n`, the
// ranks of an MPI job): item k belongs to shard k mod n, so shards are disjoint, their union is the
// whole list, and their sizes differ by at most one whatever the list's order or subsets.

/// Share `index` of `count` (0-based index; `whole` = 0 of 1).
public struct DatasetShard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The whole list.
    public static let whole = DatasetShard(uncheckedIndex: 0, count: 1)

    private init(uncheckedIndex index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// - Throws: `DatasetError` unless 0 <= index < count.
    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw DatasetError("shard \(index)/\(count): need a shard count >= 1 and 0 <= index < count")
        }
        self.init(uncheckedIndex: index, count: count)
    }

    /// Parses "i/n" (e.g. "0/4" for the first of four shares).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw DatasetError("shard \"\(text)\": write it as i/n, e.g. 0/4 for the first of four shares")
        }
        try self.init(index: index, count: count)
    }

    /// The positions of this share among `total` items, in list order.
    public func positions(of total: Int) -> StrideTo<Int> {
        stride(from: index, to: total, by: count)
    }

    public var description: String { "\(index)/\(count)" }
}
