// Learning-rate schedules as pure functions of the optimizer step (0 = the first update), and a
// scheduler that applies one to an optimizer and keeps the position, which checkpoints save.
import Foundation

/// The learning rate for each optimizer step.
public protocol LearningRateSchedule: Sendable {
    /// The rate used by update number `step` (0-based).
    func learningRate(atStep step: Int) -> Double
}

/// The same rate for every step.
public struct ConstantSchedule: LearningRateSchedule, Codable, Equatable {
    public var learningRate: Double
    public init(learningRate: Double) { self.learningRate = learningRate }
    public func learningRate(atStep step: Int) -> Double { learningRate }
}

/// `base * gamma^k`, k = the number of milestones <= step (PyTorch `MultiStepLR`).
public struct MultiStepSchedule: LearningRateSchedule, Codable, Equatable {
    public var baseLearningRate: Double
    public var milestones: [Int]
    public var gamma: Double

    public init(baseLearningRate: Double, milestones: [Int], gamma: Double = 0.1) {
        self.baseLearningRate = baseLearningRate
        self.milestones = milestones.sorted()
        self.gamma = gamma
    }

    public func learningRate(atStep step: Int) -> Double {
        baseLearningRate * pow(gamma, Double(milestones.filter { $0 <= step }.count))
    }
}

/// Linear warm-up, then a half cosine down to `minimumLearningRate`:
///
///     step < W:        base * (step + 1) / W
///     W <= step:       p = min(1, (step - W) / max(1, T - W))
///                      minimum + (base - minimum) * (1 + cos(pi * p)) / 2
///
/// with W = `warmupSteps` and T = `totalSteps`; steps past T stay at the minimum.
public struct WarmupCosineSchedule: LearningRateSchedule, Codable, Equatable {
    public var baseLearningRate: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minimumLearningRate: Double

    public init(baseLearningRate: Double, warmupSteps: Int, totalSteps: Int, minimumLearningRate: Double = 0) {
        precondition(
            warmupSteps >= 0 && totalSteps >= warmupSteps,
            "WarmupCosineSchedule: need 0 <= warmupSteps (\(warmupSteps)) <= totalSteps (\(totalSteps))")
        self.baseLearningRate = baseLearningRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minimumLearningRate = minimumLearningRate
    }

    public func learningRate(atStep step: Int) -> Double {
        if step < warmupSteps { return baseLearningRate * Double(step + 1) / Double(warmupSteps) }
        let progress = min(1, Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps)))
        return minimumLearningRate + (baseLearningRate - minimumLearningRate) * (1 + cos(Double.pi * progress)) / 2
    }
}

/// Drives an optimizer's learning rate through a schedule (PyTorch's scheduler pattern:
/// `optimizer.step(); scheduler.step()`).
public final class LearningRateScheduler {
    public let schedule: any LearningRateSchedule
    public let optimizer: any Optimizer
    /// Optimizer steps taken so far, i.e. the step whose rate the optimizer now holds.
    public private(set) var position: Int

    /// Sets the optimizer's rate for step `position` (0 for a fresh run).
    public init(schedule: any LearningRateSchedule, optimizer: any Optimizer, position: Int = 0) {
        self.schedule = schedule
        self.optimizer = optimizer
        self.position = position
        optimizer.learningRate = schedule.learningRate(atStep: position)
    }

    /// Moves to the next step's rate; call after each `optimizer.step()`.
    public func step() {
        position += 1
        optimizer.learningRate = schedule.learningRate(atStep: position)
    }

    /// Jumps to a saved position (used when a training checkpoint is restored).
    public func restore(position: Int) {
        precondition(position >= 0, "LearningRateScheduler: negative position \(position)")
        self.position = position
        optimizer.learningRate = schedule.learningRate(atStep: position)
    }
}
