import GKNetNeuralNet
import GKNetTensorCore
import Testing

/// Test modules built only from elementwise ops, so these tests need no layer.
final class Scale: Module {
    let weight: Tensor
    let bias: Tensor?
    let runningMean: Tensor
    let numBatchesTracked = Tensor(scalar: 0)
    var isTraining = true

    init(_ count: Int, bias: Bool = true, start: Float = 1) {
        weight = Tensor(shape: [count], data: (0..<count).map { start + Float($0) }, requiresGrad: true)
        self.bias = bias ? Tensor(repeating: 0.5, shape: [count], requiresGrad: true) : nil
        runningMean = Tensor.zeros([count])
    }

    var members: [ModuleMember] {
        [.parameter("weight", weight)] + (bias.map { [.parameter("bias", $0)] } ?? [])
            + [.buffer("running_mean", runningMean), .buffer("num_batches_tracked", numBatchesTracked, integer: true)]
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let scaled = x * weight
        return bias.map { scaled + $0 } ?? scaled
    }
}

final class Stage: Module {
    let conv: Scale
    let norm: Scale
    var isTraining = true
    init(_ count: Int) {
        conv = Scale(count, bias: false)
        norm = Scale(count, start: 2)
    }
    var members: [ModuleMember] { [.child("conv", conv), .child("bn", norm)] }
}

final class Encoder: Module {
    let stages: [Stage]
    let head: Scale
    var isTraining = true
    init() {
        stages = [Stage(2), Stage(3)]
        head = Scale(4)
    }
    var members: [ModuleMember] { [.children("stages", stages), .child("head", head)] }
}

final class Shared: Module {
    let a = Scale(2)
    lazy var b = a
    var isTraining = true
    var members: [ModuleMember] { [.child("a", a), .child("b", b)] }
}

@Suite struct ModuleTests {
    @Test func namesFollowPyTorchStateDict() {
        let model = Encoder()
        #expect(
            model.namedParameters().map(\.0) == [
                "stages.0.conv.weight", "stages.0.bn.weight", "stages.0.bn.bias",
                "stages.1.conv.weight", "stages.1.bn.weight", "stages.1.bn.bias",
                "head.weight", "head.bias",
            ])
        #expect(
            model.namedBuffers().map(\.0) == [
                "stages.0.conv.running_mean", "stages.0.conv.num_batches_tracked",
                "stages.0.bn.running_mean", "stages.0.bn.num_batches_tracked",
                "stages.1.conv.running_mean", "stages.1.conv.num_batches_tracked",
                "stages.1.bn.running_mean", "stages.1.bn.num_batches_tracked",
                "head.running_mean", "head.num_batches_tracked",
            ])
        #expect(
            model.namedModules().map(\.0) == [
                "", "stages.0", "stages.0.conv", "stages.0.bn", "stages.1", "stages.1.conv", "stages.1.bn", "head",
            ])
        #expect(model.stateDictionary()["stages.1.bn.num_batches_tracked"]?.dtype == .i64)
    }

    @Test func countsParameters() {
        let model = Encoder()
        // stage 0: 2 + 2 + 2, stage 1: 3 + 3 + 3, head: 4 + 4
        #expect(model.parameterCount == 23)
        #expect(model.trainableParameterCount == 23)
    }

    @Test func sharedTensorsAppearOnceAsParametersButTwiceInState() {
        let model = Shared()
        #expect(model.namedParameters().map(\.0) == ["a.weight", "a.bias"])
        #expect(model.stateEntries().count == 8)
        #expect(model.parameterCount == 4)
    }

    @Test func trainAndEvalReachEveryModule() {
        let model = Encoder()
        model.eval()
        #expect(model.namedModules().allSatisfy { !$0.1.isTraining })
        model.stages[1].train()
        #expect(model.stages[1].norm.isTraining && !model.stages[0].norm.isTraining && !model.isTraining)
        model.train()
        #expect(model.namedModules().allSatisfy { $0.1.isTraining })
    }

    @Test func freezingStopsGradientsAndOptimizerUpdates() {
        let model = Encoder()
        model.freeze(prefix: "stages.0.")
        #expect(model.trainableParameterCount == 23 - 6)
        let x = Tensor(shape: [2], data: [1, 1])
        let y = model.stages[0].norm(model.stages[0].conv(x)).sum() + model.head(Tensor.ones([4])).sum()
        y.backward()
        #expect(model.stages[0].conv.weight.grad == nil)
        #expect(model.head.weight.grad == [1, 1, 1, 1])
        let before = model.stages[0].conv.weight.data
        let optimizer = SGD(parameters: model.namedParameters(), learningRate: 0.1)
        optimizer.step()
        #expect(model.stages[0].conv.weight.data == before)
        #expect(zip(model.head.weight.data, [0.9, 1.9, 2.9, 3.9]).allSatisfy { abs($0 - $1) < 1e-6 })
        model.unfreeze()
        #expect(model.trainableParameterCount == 23)
        model.zeroGrad()
        #expect(model.parameters().allSatisfy { $0.grad == nil })
    }
}
