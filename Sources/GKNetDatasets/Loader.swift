// The batch loader: decodes and augments the next batch on a background thread while the caller
// trains on the current one. Every batch is a pure function of (seed, epoch, position), so the
// sequence is the same whatever the timing, and a saved `LoaderState` resumes it exactly.
import Dispatch
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// Where a loader is: the next batch is the one starting at `position` of epoch `epoch`'s order.
public struct LoaderState: Sendable, Codable, Equatable {
    public var epoch: Int
    /// Samples of this epoch already delivered.
    public var position: Int

    public init(epoch: Int = 0, position: Int = 0) {
        self.epoch = epoch
        self.position = position
    }
}

/// How a loader walks its dataset.
public struct LoaderOptions: Sendable {
    public var batchSize: Int
    /// Base seed of the shuffles and of every sample's augmentation.
    public var seed: UInt64
    /// Shuffle each epoch (training) or keep list order (evaluation).
    public var shuffle: Bool
    /// Drop the last incomplete batch of an epoch (training) or deliver it (evaluation).
    public var dropLast: Bool
    /// Stop after this many epochs (`nil`: endless, for training by steps).
    public var epochs: Int?
    /// Prepare the next batch in the background.
    public var prefetch: Bool
    /// Decode samples of a batch on several threads.
    public var parallelDecode: Bool
    public var limits: DecodeLimits
    /// The part of every batch this loader delivers, for the ranks of a data-parallel job: of each
    /// batch of `batchSize` samples, the contiguous slice number `index` of `count` equal slices
    /// (`batchSize` must divide by `count`). The batch order, and every sample's augmentation, stay
    /// those of the whole batch, so the ranks' slices together are exactly a one-process batch.
    public var batchPart = DatasetShard.whole

    public init(
        batchSize: Int, seed: UInt64 = 0, shuffle: Bool = true, dropLast: Bool = true, epochs: Int? = nil,
        prefetch: Bool = true, parallelDecode: Bool = true, limits: DecodeLimits = DecodeLimits()
    ) {
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.epochs = epochs
        self.prefetch = prefetch
        self.parallelDecode = parallelDecode
        self.limits = limits
    }

    /// Evaluation: list order, every sample once, last batch kept.
    public static func evaluation(batchSize: Int) -> LoaderOptions {
        LoaderOptions(batchSize: batchSize, shuffle: false, dropLast: false, epochs: 1)
    }
}

/// Batches of (composite, mask, target) from a dataset, with background prefetch.
///
/// Not thread-safe: call `next()`/`restore(_:)` from one thread (the training loop).
public final class BatchLoader {
    public let dataset: any SampleSource
    public let transform: any SampleTransform
    /// The transform of batch number b (counted over epochs from 0), when it changes during a run
    /// (the multi-resolution schedule); nil = `transform` for every batch.
    public let transformAtBatch: (@Sendable (Int) -> any SampleTransform)?
    public let options: LoaderOptions
    /// The position of the batch the next `next()` returns.
    public private(set) var state: LoaderState

    /// The next batch, being made on `queue`, and the position it was made for.
    private var pending: (state: LoaderState, batch: PendingResult<Batch>)?
    private let queue = DispatchQueue(label: "gknet.loader", qos: .userInitiated)
    private var orderCache: (epoch: Int, order: [Int])?

    public init(
        dataset: any SampleSource, transform: any SampleTransform, options: LoaderOptions,
        state: LoaderState = LoaderState(),
        transformAtBatch: (@Sendable (Int) -> any SampleTransform)? = nil
    ) {
        precondition(options.batchSize > 0, "BatchLoader: batch size \(options.batchSize) must be positive")
        precondition(
            options.batchSize % options.batchPart.count == 0,
            "BatchLoader: batch size \(options.batchSize) does not split into \(options.batchPart.count) parts")
        self.dataset = dataset
        self.transform = transform
        self.transformAtBatch = transformAtBatch
        self.options = options
        self.state = state
    }

    /// Batches per epoch.
    public var batchesPerEpoch: Int {
        options.dropLast
            ? dataset.count / options.batchSize : (dataset.count + options.batchSize - 1) / options.batchSize
    }

    /// Samples delivered per epoch.
    var samplesPerEpoch: Int { options.dropLast ? batchesPerEpoch * options.batchSize : dataset.count }

    /// The dataset indices of epoch `epoch` in delivery order (seeded Fisher-Yates shuffle).
    public func order(epoch: Int) -> [Int] {
        if let cached = orderCache, cached.epoch == epoch { return cached.order }
        var order = Array(0..<dataset.count)
        if options.shuffle {
            var generator = DerivedSeed.generator(options.seed, 0x5348_5546 /* "SHUF" */, UInt64(epoch))
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(i, generator.index(below: i + 1))
            }
        }
        orderCache = (epoch, order)
        return order
    }

    /// The state after the batch at `state`, or nil past the last epoch.
    func advanced(_ state: LoaderState) -> LoaderState? {
        var next = LoaderState(epoch: state.epoch, position: state.position + options.batchSize)
        if next.position >= samplesPerEpoch { next = LoaderState(epoch: state.epoch + 1, position: 0) }
        if let epochs = options.epochs, next.epoch >= epochs { return nil }
        return next
    }

    /// Whether `state` names a batch that exists.
    func isValid(_ state: LoaderState) -> Bool {
        if let epochs = options.epochs, state.epoch >= epochs { return false }
        return state.position < samplesPerEpoch
    }

    /// The next batch, or nil after the last epoch (never nil when `epochs` is nil). Throws the
    /// first sample error of the batch (it names the list line and file).
    public func next() throws -> Batch? {
        guard samplesPerEpoch > 0 else {
            throw DatasetError(
                "\(dataset.sourceDescription) has \(dataset.count) samples, fewer than one batch of "
                    + "\(options.batchSize)"
            )
        }
        guard isValid(state) else { return nil }
        let job = pending.flatMap { $0.state == state ? $0.batch : nil } ?? schedule(state)
        pending = nil
        let batch = try job.wait()
        guard let following = advanced(state) else {
            state = LoaderState(epoch: options.epochs ?? state.epoch + 1, position: 0)
            return batch
        }
        state = following
        if options.prefetch { pending = (following, schedule(following)) }
        return batch
    }

    /// Moves to `state` (from a checkpoint); any prefetched batch is discarded.
    public func restore(_ state: LoaderState) {
        pending = nil
        self.state = state
    }

    private func schedule(_ state: LoaderState) -> PendingResult<Batch> {
        var indices = Array(
            order(epoch: state.epoch)[state.position..<min(state.position + options.batchSize, dataset.count)])
        if options.batchPart.count > 1 {
            let width = options.batchSize / options.batchPart.count
            let first = min(indices.count, options.batchPart.index * width)
            indices = Array(indices[first..<min(indices.count, first + width)])
        }
        let batchNumber = state.epoch * batchesPerEpoch + state.position / options.batchSize
        let work = BatchRecipe(
            dataset: dataset, transform: transformAtBatch?(batchNumber) ?? transform, options: options,
            epoch: state.epoch, indices: indices)
        return PendingResult(on: queue) { try work.make() }
    }
}

/// Everything needed to build one batch, independent of the loader (runs on the background queue).
struct BatchRecipe: Sendable {
    let dataset: any SampleSource
    let transform: any SampleTransform
    let options: LoaderOptions
    let epoch: Int
    let indices: [Int]

    func make() throws -> Batch {
        var results = [Result<Sample, Error>?](repeating: nil, count: indices.count)
        let threads = options.parallelDecode ? min(Threading.count, indices.count) : 1
        results.withUnsafeMutableBufferPointer { slots in
            let box = UncheckedSendable(slots)
            concurrentForEach(indices.count, threads: threads) { slot in
                box.value[slot] = Result { try sample(indices[slot]) }
            }
        }
        return Batch(samples: try results.map { try $0!.get() })
    }

    func sample(_ index: Int) throws -> Sample {
        var generator = DerivedSeed.generator(options.seed, UInt64(epoch), UInt64(index))
        return transform.apply(to: try dataset.load(index, limits: options.limits), generator: &generator)
    }
}
