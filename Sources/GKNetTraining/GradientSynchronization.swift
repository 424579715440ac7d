// How the processes of one training run stay in step. A run of one process uses
// `SingleProcessSynchronization`, where every call is a no-op; under mpirun every rank uses
// `MPISynchronization`: each trains on its slice of the global batch, the gradients are averaged with
// one allreduce per step, and rank 0 alone reads and writes the run directory and sends the
// configuration and checkpoint to the others (docs/scaling.md).
import Foundation
import GKNetDataParallel
import GKNetDatasets
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

/// The collective steps of a training run; the trainer calls each at the same point on every rank.
protocol GradientSynchronization {
    /// Whether this process owns the run directory and reports progress (rank 0, or the only process).
    var isRoot: Bool { get }
    /// How many processes train together.
    var processCount: Int { get }
    /// Which slice of every batch and of the validation images this process handles.
    var shard: DatasetShard { get throws }
    /// Rank 0's resolved configuration on every rank (only rank 0 calls `resolve`: it reads the run directory).
    func shareConfiguration(_ resolve: () throws -> TrainingConfiguration) throws -> TrainingConfiguration
    /// Throws `RankDisagreement` on every rank when any rank's data differs from rank 0's.
    func checkAgreement(_ fingerprint: DataFingerprint) throws
    /// Lets batch norm sum its statistics over the processes (`sync_batch_norm`).
    func synchronizeBatchNorm(in model: GKNet)
    /// Calls `body` with rank 0's checkpoint `url` (nil: nothing to restore); the other ranks get a
    /// temporary copy of its bytes, removed afterwards.
    func withSharedCheckpoint(_ url: URL?, _ body: (URL?) throws -> Void) throws
    /// Makes every rank's parameters (unless `buffersOnly`) and buffers rank 0's.
    func shareModelState(_ model: GKNet, buffersOnly: Bool)
    /// Replaces every gradient by its mean over the processes. - Returns: the mean of their losses.
    func averageGradients(of parameters: [Tensor], loss: Float) -> Float
    /// Adds up per-process sums (validation metrics' `totals`).
    func sum(_ totals: inout [Double])
    /// Whether any process asks to stop (Ctrl-C reaches each on its own; all stop at the same step).
    func anyStopping(_ stopping: Bool) -> Bool
}

/// The synchronization of `communicator`'s processes: a no-op for a job of one.
func gradientSynchronization(of communicator: Communicator) -> any GradientSynchronization {
    communicator.isDistributed ? MPISynchronization(communicator) : SingleProcessSynchronization()
}

/// One process: nothing to synchronize.
struct SingleProcessSynchronization: GradientSynchronization {
    var isRoot: Bool { true }
    var processCount: Int { 1 }
    var shard: DatasetShard { .whole }
    func shareConfiguration(_ resolve: () throws -> TrainingConfiguration) throws -> TrainingConfiguration {
        try resolve()
    }
    func checkAgreement(_ fingerprint: DataFingerprint) throws {}
    func synchronizeBatchNorm(in model: GKNet) {}
    func withSharedCheckpoint(_ url: URL?, _ body: (URL?) throws -> Void) throws { try body(url) }
    func shareModelState(_ model: GKNet, buffersOnly: Bool) {}
    func averageGradients(of parameters: [Tensor], loss: Float) -> Float { loss }
    func sum(_ totals: inout [Double]) {}
    func anyStopping(_ stopping: Bool) -> Bool { stopping }
}

/// The ranks of an mpirun job, kept in step by MPI collectives.
struct MPISynchronization: GradientSynchronization {
    let communicator: Communicator

    init(_ communicator: Communicator) { self.communicator = communicator }

    var isRoot: Bool { communicator.isRoot }
    var processCount: Int { communicator.size }
    var shard: DatasetShard { get throws { try DatasetShard(index: communicator.rank, count: communicator.size) } }

    func shareConfiguration(_ resolve: () throws -> TrainingConfiguration) throws -> TrainingConfiguration {
        // A rank 0 that throws here ends the job (the command aborts it), so the others never wait alone.
        let encoded = communicator.broadcast(communicator.isRoot ? try JSONEncoder().encode(resolve()) : Data())
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self, from: encoded)
        try configuration.validate()
        return configuration
    }

    func checkAgreement(_ fingerprint: DataFingerprint) throws { try fingerprint.checkAgreement(communicator) }

    func synchronizeBatchNorm(in model: GKNet) {
        for case let (_, norm as BatchNorm2d) in model.namedModules() {
            norm.crossProcessSum = { [communicator] in communicator.sumInPlace($0) }
        }
    }

    func withSharedCheckpoint(_ url: URL?, _ body: (URL?) throws -> Void) throws {
        if communicator.isRoot {
            _ = communicator.broadcast(try url.map { try Data(contentsOf: $0) } ?? Data())
            return try body(url)
        }
        let bytes = communicator.broadcast(Data())
        guard !bytes.isEmpty else { return try body(nil) }
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gknet-rank\(communicator.rank)-\(ProcessInfo.processInfo.processIdentifier).safetensors")
        try AtomicFile.write(bytes, to: copy)
        defer { try? FileManager.default.removeItem(at: copy) }
        try body(copy)
    }

    /// Also called before validation and checkpoints: per-rank batch norm leaves each rank its own
    /// running statistics.
    func shareModelState(_ model: GKNet, buffersOnly: Bool) {
        let tensors = (buffersOnly ? [] : model.namedParameters().map(\.1)) + model.namedBuffers().map(\.1)
        var flat = tensors.flatMap(\.data)
        flat.withUnsafeMutableBufferPointer { communicator.broadcast($0) }
        var offset = 0
        for tensor in tensors {
            tensor.data = Array(flat[offset..<offset + tensor.count])
            offset += tensor.count
        }
    }

    /// One allreduce of a flat buffer that also carries the loss. The global batch's loss is the mean
    /// of the ranks' per-image means (equal slices), so the mean gradient is the whole batch's.
    func averageGradients(of parameters: [Tensor], loss: Float) -> Float {
        var flat = [Float](repeating: 0, count: parameters.reduce(1) { $0 + $1.count })
        var offset = 0
        for parameter in parameters {
            if let grad = parameter.grad {
                flat.withUnsafeMutableBufferPointer {
                    _ = UnsafeMutableBufferPointer(rebasing: $0[offset...]).update(fromContentsOf: grad)
                }
            }
            offset += parameter.count
        }
        flat[offset] = loss
        communicator.sumInPlace(&flat)
        let scale = 1 / Float(communicator.size)
        offset = 0
        for parameter in parameters {
            // The ranks run the same graph, so a parameter without a gradient has none on every rank.
            if parameter.grad != nil {
                parameter.grad = flat[offset..<offset + parameter.count].map { $0 * scale }
            }
            offset += parameter.count
        }
        return flat[offset] * scale
    }

    func sum(_ totals: inout [Double]) { communicator.sumInPlace(&totals) }

    func anyStopping(_ stopping: Bool) -> Bool {
        var flag: [Float] = [stopping ? 1 : 0]
        communicator.sumInPlace(&flag)
        return flag[0] > 0
    }
}
