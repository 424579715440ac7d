// A training step whose batch is split over model replicas that run side by side, one per thread,
// each running its kernels on its own thread alone (`Threading.perThreadLimit`). On small maps
// (the 128 px phase of the default schedule) a kernel split over threads spends much of its time
// forking, joining and waiting; two half batches on one thread each keep both cores busy without
// that (issue 26, docs/benchmarks.md "Replicas"). The mean of the replicas' gradients is the whole
// batch's gradient (equal parts, per-image mean losses), as in a data-parallel run over processes;
// batch norm normalizes each part with its own statistics, as per-rank batch norm does there.
//
// Deterministic: each replica's computation is single-threaded and the sums run in replica order,
// so a step is a pure function of the weights, the batch and the replica count.
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

/// The model and its replicas; the optimizer steps the model, then `shareWeights()` copies it.
public final class ReplicatedTrainingStep {
    /// The model (first) and its copies.
    public let replicas: [GKNet]
    public var count: Int { replicas.count }

    /// - Parameter count: replicas, the model included (1: the plain step on all kernel threads).
    public init(model: GKNet, count: Int) throws {
        precondition(count >= 1, "ReplicatedTrainingStep: at least one replica")
        var replicas = [model]
        for _ in 1..<count {
            let copy = try GKNet(configuration: model.configuration)
            _ = try copy.load(stateDictionary: model.stateDictionary(), strict: true)
            replicas.append(copy)
        }
        self.replicas = replicas
    }

    /// Runs `loss(replica, part)` and its backward pass for every replica at once (`part` is the
    /// replica's index: which slice of the batch it takes), then leaves the mean of their
    /// gradients in the model's parameters.
    /// - Returns: the mean of the replicas' losses.
    public func lossAndGradients(_ loss: (GKNet, Int) -> Tensor) -> Float {
        for replica in replicas {
            replica.train()
            replica.zeroGrad()
        }
        guard count > 1 else {
            let value = loss(replicas[0], 0)
            value.backward()
            return value.item
        }
        var losses = [Float](repeating: 0, count: count)
        losses.withUnsafeMutableBufferPointer { slots in
            let box = UncheckedSendable(slots)
            concurrentForEach(count) { part in
                Threading.$perThreadLimit.withValue(1) {
                    withBLASOnCallingThread {
                        let value = loss(replicas[part], part)
                        value.backward()
                        box.value[part] = value.item
                    }
                }
            }
        }
        averageGradientsIntoModel()
        return losses.reduce(0, +) / Float(count)
    }

    /// The model's gradients become the mean over the replicas (summed in replica order).
    private func averageGradientsIntoModel() {
        let parameters = replicas.map { $0.parameters() }
        let scale = 1 / Float(count)
        for (index, parameter) in parameters[0].enumerated() {
            // The replicas run the same graph: a parameter without a gradient has none in any replica.
            guard var sum = parameter.grad else { continue }
            for replica in 1..<count {
                guard let gradient = parameters[replica][index].grad else { continue }
                for i in sum.indices { sum[i] += gradient[i] }
            }
            for i in sum.indices { sum[i] *= scale }
            parameter.grad = sum
        }
    }

    /// After the optimizer's step: every replica takes the model's weights (batch-norm running
    /// statistics stay each replica's own; only the model's are used outside training).
    public func shareWeights() {
        guard count > 1 else { return }
        let parameters = replicas.map { $0.parameters() }
        for replica in 1..<count {
            for (index, parameter) in parameters[replica].enumerated() { parameter.data = parameters[0][index].data }
        }
    }

    /// Images `part * n / count ..< (part + 1) * n / count` of an N x C x H x W batch tensor (the
    /// tensor itself for one part: no copy on the step of a single model).
    public static func slice(_ tensor: Tensor, part: Int, of count: Int) -> Tensor {
        guard count > 1 else { return tensor }
        let images = tensor.shape[0]
        precondition(images % count == 0, "ReplicatedTrainingStep: \(images) images do not split into \(count)")
        let size = images / count
        return tensor.sliced(axis: 0, range: (part * size)..<((part + 1) * size))
    }
}
