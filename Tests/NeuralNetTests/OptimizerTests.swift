import Foundation
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// A one-parameter tensor with a given gradient.
func parameter(_ values: [Float], grad: [Float]) -> Tensor {
    let t = Tensor(shape: [values.count], data: values, requiresGrad: true)
    t.grad = grad
    return t
}

func close(_ a: [Float], _ b: [Double], _ tolerance: Double = 1e-6) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tolerance * max(1, abs($1)) }
}

@Suite struct OptimizerTests {
    @Test func sgdWithMomentumAndWeightDecayByHand() {
        let p = parameter([1], grad: [0.5])
        let sgd = SGD(parameters: [("p", p)], learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)
        sgd.step()
        // d = 0.5 + 0.1 * 1 = 0.6; b = 0.6; p = 1 - 0.1 * 0.6
        #expect(close(p.data, [0.94]))
        sgd.step()
        // d = 0.5 + 0.1 * 0.94 = 0.594; b = 0.9 * 0.6 + 0.594 = 1.134; p = 0.94 - 0.1134
        #expect(close(p.data, [0.8266]))
    }

    @Test func sgdNesterovByHand() {
        let p = parameter([1, -2], grad: [0.5, 1])
        let sgd = SGD(parameters: [("p", p)], learningRate: 0.1, momentum: 0.9, nesterov: true)
        sgd.step()
        // d = g; b = g; d = g + 0.9 * g = 1.9 g; p = p - 0.19 g
        #expect(close(p.data, [1 - 0.095, -2 - 0.19]))
    }

    @Test func adamAndAdamWFirstStepsByHand() {
        // Reference in Double over 3 steps with changing gradients.
        func reference(decoupled: Bool, weightDecay: Double) -> [Double] {
            var (p, m, v) = (1.0, 0.0, 0.0)
            let (lr, b1, b2, eps) = (0.1, 0.9, 0.999, 1e-8)
            for t in 1...3 {
                var g = [0.5, -0.25, 2.0][t - 1]
                if decoupled { p *= 1 - lr * weightDecay } else { g += weightDecay * p }
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                let denominator = v.squareRoot() / (1 - pow(b2, Double(t))).squareRoot() + eps
                p -= lr / (1 - pow(b1, Double(t))) * m / denominator
            }
            return [p]
        }
        for decoupled in [false, true] {
            let p = parameter([1], grad: [0])
            let adam: Adam =
                decoupled
                ? AdamW(parameters: [("p", p)], learningRate: 0.1, weightDecay: 0.1)
                : Adam(parameters: [("p", p)], learningRate: 0.1, weightDecay: 0.1)
            for g: Float in [0.5, -0.25, 2.0] {
                p.grad = [g]
                adam.step()
            }
            #expect(
                close(p.data, reference(decoupled: decoupled, weightDecay: 0.1), 1e-5),
                "decoupled \(decoupled): \(p.data)")
        }
    }

    @Test func parametersWithoutGradientsAreSkipped() {
        let a = parameter([1], grad: [1]), b = Tensor(shape: [1], data: [5], requiresGrad: true)
        let adam = Adam(parameters: [("a", a), ("b", b)], learningRate: 0.1)
        adam.step()
        #expect(b.data == [5])
        #expect(adam.state.steps == ["a": 1])
    }

    @Test func clippingScalesByTheGlobalNorm() {
        let a = parameter([0, 0], grad: [3, 0]), b = parameter([0], grad: [4])
        let norm = clipGradientNorm([a, b], maximumNorm: 1)
        #expect(norm == 5)
        #expect(close(a.grad!, [0.6, 0], 1e-6) && close(b.grad!, [0.8], 1e-6))
        let c = parameter([0], grad: [0.5])
        clipGradientNorm([c], maximumNorm: 1)
        #expect(c.grad == [0.5])
    }

    @Test(arguments: ["SGD", "Adam", "AdamW"])
    func stateRoundTripContinuesIdentically(kind: String) throws {
        func make(_ p: Tensor) -> any Optimizer {
            switch kind {
            case "SGD": SGD(parameters: [("p", p)], learningRate: 0.1, momentum: 0.9, nesterov: true)
            case "Adam": Adam(parameters: [("p", p)], learningRate: 0.1, weightDecay: 0.01)
            default: AdamW(parameters: [("p", p)], learningRate: 0.1)
            }
        }
        let gradients: [[Float]] = [[0.3, -1], [0.1, 0.2], [-0.7, 0.4], [1, 1]]
        let p1 = parameter([1, 2], grad: [0, 0]), o1 = make(p1)
        for g in gradients {
            p1.grad = g
            o1.step()
        }

        let p2 = parameter([1, 2], grad: [0, 0]), o2 = make(p2)
        for g in gradients.prefix(2) {
            p2.grad = g
            o2.step()
        }
        let saved = o2.state
        let p3 = Tensor(shape: [2], data: p2.data, requiresGrad: true), o3 = make(p3)
        try o3.load(state: saved)
        #expect(o3.state == saved)
        for g in gradients.dropFirst(2) {
            p3.grad = g
            o3.step()
        }
        #expect(p3.data == p1.data)
    }

    @Test func mismatchedStateIsRejectedWithoutChanges() {
        let p = parameter([1, 2], grad: [1, 1])
        let adam = Adam(parameters: [("p", p)])
        adam.step()
        let before = adam.state
        let wrongSize = OptimizerState(kind: "Adam", steps: ["p": 1], buffers: ["exp_avg.p": [1, 2, 3]])
        #expect(throws: OptimizerStateError.self) { try adam.load(state: wrongSize) }
        #expect(throws: OptimizerStateError.self) { try adam.load(state: OptimizerState(kind: "SGD")) }
        let unknown = OptimizerState(kind: "Adam", steps: ["q": 1], buffers: ["exp_avg.q": [1]])
        #expect(throws: OptimizerStateError.self) { try adam.load(state: unknown) }
        #expect(adam.state == before)
    }
}

/// PyTorch parity: 10 steps on the models of Scripts/fixtures/nn_optim.py.
@Suite struct OptimizerParityTests {
    /// Builds the optimizer and scheduler a fixture's config describes.
    static func make(config: [String: Any], parameters: [(String, Tensor)]) -> (
        any Optimizer, LearningRateScheduler, Double
    ) {
        let lr = config["lr"] as! Double, wd = config["weight_decay"] as! Double
        let optimizer: any Optimizer
        switch config["optimizer"] as! String {
        case "SGD":
            optimizer = SGD(
                parameters: parameters, learningRate: lr, momentum: config["momentum"] as! Double,
                weightDecay: wd, nesterov: config["nesterov"] as! Bool)
        case "Adam": optimizer = Adam(parameters: parameters, learningRate: lr, weightDecay: wd)
        default: optimizer = AdamW(parameters: parameters, learningRate: lr, weightDecay: wd)
        }
        let schedule = config["schedule"] as! [String: Any]
        let rule: any LearningRateSchedule
        if schedule["kind"] as! String == "multistep" {
            rule = MultiStepSchedule(
                baseLearningRate: lr, milestones: schedule["milestones"] as! [Int], gamma: schedule["gamma"] as! Double)
        } else {
            rule = WarmupCosineSchedule(
                baseLearningRate: lr, warmupSteps: schedule["warmup"] as! Int,
                totalSteps: schedule["total"] as! Int, minimumLearningRate: schedule["minimum"] as! Double)
        }
        return (optimizer, LearningRateScheduler(schedule: rule, optimizer: optimizer), config["clip"] as! Double)
    }

    /// Runs the fixture's 10 steps with `loss(step)` and compares losses, rates and parameters.
    static func check(_ file: SafeTensorsFile, parameters: [(String, Tensor)], loss: (Int) -> Tensor) throws {
        let config = try JSONSerialization.jsonObject(with: Data(file.metadata["config"]!.utf8)) as! [String: Any]
        for (name, tensor) in parameters { tensor.data = try file.tensor("init." + name).data }
        let (optimizer, scheduler, clip) = make(config: config, parameters: parameters)
        var losses: [Float] = [], rates: [Float] = []
        for step in 0..<10 {
            optimizer.zeroGrad()
            let value = loss(step)
            value.backward()
            clipGradientNorm(parameters.map(\.1), maximumNorm: clip)
            rates.append(Float(optimizer.learningRate))
            optimizer.step()
            scheduler.step()
            losses.append(value.item)
        }
        let lossCheck = compare(losses, try file.tensor("losses").data, relativeTolerance: 1e-5, label: "losses")
        #expect(lossCheck.passed, "\(lossCheck)")
        let rateCheck = compare(rates, try file.tensor("learning_rates").data, relativeTolerance: 1e-6, label: "rates")
        #expect(rateCheck.passed, "\(rateCheck)")
        for (name, tensor) in parameters {
            let c = compare(
                tensor, try file.tensor("final." + name), relativeTolerance: 1e-5, absoluteTolerance: 1e-7, label: name)
            #expect(c.passed, "\(c)")
        }
    }

    @Test(arguments: ["sgd", "sgd_nesterov", "adam", "adamw"])
    func elementwiseModel(config: String) throws {
        let file = try Fixtures.load("nn_optim/elementwise_\(config).safetensors")
        let names = ["w1", "b1", "w2", "b2"]
        let parameters = names.map { ($0, Tensor.zeros([4], requiresGrad: true)) }
        let (w1, b1, w2, b2) = (parameters[0].1, parameters[1].1, parameters[2].1, parameters[3].1)
        let inputs = try file.tensor("inputs"), targets = try file.tensor("targets")
        try Self.check(file, parameters: parameters) { step in
            let x = Tensor(shape: [6, 4], data: Array(inputs.data[(step * 24)..<(step * 24 + 24)]))
            let t = Tensor(shape: [6, 4], data: Array(targets.data[(step * 24)..<(step * 24 + 24)]))
            let h = x * w1 + b1
            let d = (h * h) * w2 + b2 - t
            return (d * d).sum() * (1 / Float(24))
        }
    }
}

extension OptimizerParityTests {
    /// The acceptance model: Linear(4, 8) -> tanh -> Linear(8, 3), mean squared error.
    @Test(arguments: ["sgd", "sgd_nesterov", "adam", "adamw"])
    func twoLayerPerceptron(config: String) throws {
        let file = try Fixtures.load("nn_optim/mlp_\(config).safetensors")
        var g = SplitMix64(seed: 1)
        let fc1 = Linear(inputFeatures: 4, outputFeatures: 8, generator: &g)
        let fc2 = Linear(inputFeatures: 8, outputFeatures: 3, generator: &g)
        let model = Sequential([fc1, Tanh(), fc2])
        let parameters = model.namedParameters().map {
            (["0": "fc1", "2": "fc2"][String($0.0.prefix(1))]! + $0.0.dropFirst(1), $0.1)
        }
        #expect(parameters.map(\.0) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        let inputs = try file.tensor("inputs"), targets = try file.tensor("targets")
        try Self.check(file, parameters: parameters) { step in
            let x = Tensor(shape: [6, 4], data: Array(inputs.data[(step * 24)..<(step * 24 + 24)]))
            let t = Tensor(shape: [6, 3], data: Array(targets.data[(step * 18)..<(step * 18 + 18)]))
            let d = model(x) - t
            return (d * d).mean()
        }
    }
}

@Suite struct ScheduleTests {
    @Test func constantAndMultiStep() {
        #expect(ConstantSchedule(learningRate: 0.3).learningRate(atStep: 1000) == 0.3)
        let s = MultiStepSchedule(baseLearningRate: 1, milestones: [7, 3], gamma: 0.5)
        #expect((0..<9).map { s.learningRate(atStep: $0) } == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25])
    }

    @Test func warmupCosine() {
        let s = WarmupCosineSchedule(baseLearningRate: 1, warmupSteps: 4, totalSteps: 12, minimumLearningRate: 0.1)
        #expect((0..<4).map { s.learningRate(atStep: $0) } == [0.25, 0.5, 0.75, 1])
        #expect(abs(s.learningRate(atStep: 8) - 0.55) < 1e-12)  // halfway: (1 + 0.1) / 2
        #expect(abs(s.learningRate(atStep: 12) - 0.1) < 1e-12 && abs(s.learningRate(atStep: 50) - 0.1) < 1e-12)
    }

    @Test func schedulerDrivesTheOptimizerAndRestoresPosition() {
        let p = parameter([0], grad: [1])
        let sgd = SGD(parameters: [("p", p)], learningRate: 99)
        let schedule = MultiStepSchedule(baseLearningRate: 1, milestones: [2], gamma: 0.1)
        let scheduler = LearningRateScheduler(schedule: schedule, optimizer: sgd)
        #expect(sgd.learningRate == 1)
        scheduler.step()
        scheduler.step()
        #expect(scheduler.position == 2 && abs(sgd.learningRate - 0.1) < 1e-15)
        scheduler.restore(position: 1)
        #expect(sgd.learningRate == 1)
    }
}
