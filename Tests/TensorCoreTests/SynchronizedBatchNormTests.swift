import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// Synchronized batch norm (`batchNorm(synchronizedBy:)`, `batchNormELU(synchronizedBy:)`): a batch
/// split over two "processes" (two threads whose per-channel sums an in-memory collective adds up)
/// gives the outputs, input gradients, running statistics and summed parameter gradients of the
/// whole batch in one call. The MPI version of the same is tested end to end by DataParallelTests.
/// The two "processes" are threads of their own (not a Dispatch pool, which on a 1-CPU machine runs
/// them one after the other, so the first would wait forever for the second), and every wait has a
/// time limit: a collective that never completes fails the test instead of hanging it.
@Suite struct SynchronizedBatchNormTests {
    enum Variant: String, CaseIterable { case batchNorm, batchNormELU, batchNormELUWithResidual }

    @Test(arguments: Variant.allCases)
    func splitBatchEqualsTheWholeBatch(variant: Variant) throws {
        var generator = SplitMix64(seed: 59)
        let shape = [4, 3, 5, 6]
        let c = shape[1]
        let x = Tensor.uniform(shape, low: -2, high: 2, generator: &generator)
        let residual = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let dOut = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let weight = Tensor.uniform([c], low: 0.5, high: 1.5, generator: &generator)
        let bias = Tensor.uniform([c], low: -0.5, high: 0.5, generator: &generator)

        struct Run {
            var output: [Float], dInput: [Float], dResidual: [Float]?, dWeight: [Float], dBias: [Float]
            var runningMean: [Float], runningVariance: [Float]
        }
        /// Runs the variant on samples `rows` of the batch, with `sum` as the cross-process hook.
        func run(rows: Range<Int>, sum: CrossProcessSum?) -> Run {
            let perSample = x.count / shape[0]
            func slice(_ t: Tensor) -> Tensor {
                Tensor(
                    shape: [rows.count] + shape.dropFirst(),
                    data: Array(t.data[rows.lowerBound * perSample..<rows.upperBound * perSample]))
            }
            let (xi, ri, wi, bi) = (slice(x), slice(residual), weight.detached(), bias.detached())
            for t in [xi, ri, wi, bi] { t.requiresGrad = true }
            let (mean, variance) = (Tensor.zeros([c]), Tensor.ones([c]))
            let y: Tensor
            switch variant {
            case .batchNorm:
                y = batchNorm(
                    xi, weight: wi, bias: bi, runningMean: mean, runningVariance: variance, training: true,
                    synchronizedBy: sum)
            case .batchNormELU, .batchNormELUWithResidual:
                y = batchNormELU(
                    xi, weight: wi, bias: bi, runningMean: mean, runningVariance: variance, training: true,
                    residual: variant == .batchNormELUWithResidual ? ri : nil, synchronizedBy: sum)
            }
            (y * slice(dOut)).sum().backward()
            return Run(
                output: y.data, dInput: xi.grad!, dResidual: variant == .batchNormELUWithResidual ? ri.grad! : nil,
                dWeight: wi.grad!, dBias: bi.grad!, runningMean: mean.data, runningVariance: variance.data)
        }

        let whole = run(rows: 0..<4, sum: nil)
        let collective = InMemoryCollective(participants: 2)
        /// The two "processes": each runs its half on its own thread and leaves its result here.
        final class Parts: @unchecked Sendable {
            let run: (Range<Int>, CrossProcessSum?) -> Run
            var results = [Run?](repeating: nil, count: 2)
            let lock = NSLock()
            init(_ run: @escaping (Range<Int>, CrossProcessSum?) -> Run) { self.run = run }
        }
        let parts = Parts(run)
        let finished = onOwnThreads(2, timeout: 120) { part in
            let result = parts.run((2 * part)..<(2 * part + 2), { collective.sum($0) })
            parts.lock.withLock { parts.results[part] = result }
        }
        try #require(finished, "the two halves did not finish within 120 s (\(collective.failure ?? "no timeout"))")
        #expect(collective.failure == nil, "\(collective.failure ?? "")")
        let (first, second) = try parts.lock.withLock {
            (try #require(parts.results[0]), try #require(parts.results[1]))
        }
        func check(_ actual: [Float], _ expected: [Float], _ label: String) {
            let comparison = compare(actual, expected, relativeTolerance: 1e-5, absoluteTolerance: 1e-6, label: label)
            #expect(comparison.passed, "\(variant) \(comparison)")
        }
        check(first.output + second.output, whole.output, "output")
        check(first.dInput + second.dInput, whole.dInput, "d input")
        if let dResidual = whole.dResidual { check(first.dResidual! + second.dResidual!, dResidual, "d residual") }
        check(zip(first.dWeight, second.dWeight).map(+), whole.dWeight, "d weight (summed over the parts)")
        check(zip(first.dBias, second.dBias).map(+), whole.dBias, "d bias (summed over the parts)")
        for part in [first, second] {
            check(part.runningMean, whole.runningMean, "running mean")
            check(part.runningVariance, whole.runningVariance, "running variance (unbiased over both parts)")
        }
        // Without the hook each half normalises with its own statistics: the test can tell.
        let unsynchronized = run(rows: 0..<2, sum: nil)
        #expect(
            !compare(
                unsynchronized.output, Array(whole.output.prefix(unsynchronized.output.count)),
                label: "unsynchronized output (must differ)"
            ).passed)
    }
}

/// Runs `body(0)`...`body(count - 1)` each on a thread of its own, so that they run at the same
/// time whatever the number of cores. - Returns: whether all finished within `timeout` seconds (a
/// thread still blocked then is left behind; the caller fails the test).
func onOwnThreads(_ count: Int, timeout: Double, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    for index in 0..<count {
        Thread {
            body(index)
            done.signal()
        }.start()
    }
    let deadline = DispatchTime.now() + timeout
    return (0..<count).allSatisfy { _ in done.wait(timeout: deadline) == .success }
}

/// Adds up buffers from `participants` threads (an in-memory allreduce): every participant calls
/// `sum` with a buffer of the same length and gets the element-wise total back in it. A round that
/// does not complete within `timeout` seconds (a participant that never calls, or calls with
/// another length) records `failure` and fills the waiting buffers with NaN instead of waiting on.
final class InMemoryCollective: @unchecked Sendable {
    let participants: Int
    let timeout: Double
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    private var accumulating: [Double] = []
    private var completed: [Double] = []
    private var failureText: String?

    init(participants: Int, timeout: Double = 30) {
        self.participants = participants
        self.timeout = timeout
    }

    /// Why a round failed (nil while every round completed).
    var failure: String? {
        condition.lock()
        defer { condition.unlock() }
        return failureText
    }

    func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        condition.lock()
        defer { condition.unlock() }
        let round = generation
        if arrived > 0 && accumulating.count != values.count {
            failureText = "round \(round): a participant sent \(values.count) values, another \(accumulating.count)"
            for i in values.indices { values[i] = .nan }
            return
        }
        if arrived == 0 {
            accumulating = Array(values)
        } else {
            for i in values.indices { accumulating[i] += values[i] }
        }
        arrived += 1
        if arrived == participants {
            completed = accumulating
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            let deadline = Date(timeIntervalSinceNow: timeout)
            while generation == round {
                if !condition.wait(until: deadline) && generation == round {
                    failureText =
                        "round \(round): \(arrived) of \(participants) participants arrived within \(timeout) s"
                    for i in values.indices { values[i] = .nan }
                    return
                }
            }
        }
        // `completed` holds this round's total until the next round completes, which needs every
        // participant of this round to have arrived there (so to have read it).
        for i in values.indices { values[i] = completed[i] }
    }
}

@Suite struct InMemoryCollectiveTests {
    /// The helper the test above relies on: a participant that never arrives is a failure within
    /// the time limit, not a hang; one that arrives adds up.
    @Test func aMissingParticipantFailsInsteadOfHanging() {
        let lonely = InMemoryCollective(participants: 2, timeout: 0.5)
        var values: [Double] = [1, 2]
        values.withUnsafeMutableBufferPointer { lonely.sum($0) }
        #expect(lonely.failure?.contains("1 of 2 participants arrived") == true)
        #expect(values.allSatisfy { $0.isNaN })

        let pair = InMemoryCollective(participants: 2)
        final class Totals: @unchecked Sendable {
            var values = [[Double]](repeating: [], count: 2)
            let lock = NSLock()
        }
        let totals = Totals()
        #expect(
            onOwnThreads(2, timeout: 30) { part in
                var mine: [Double] = [Double(part + 1), 10]
                mine.withUnsafeMutableBufferPointer { pair.sum($0) }
                totals.lock.withLock { totals.values[part] = mine }
            })
        #expect(pair.failure == nil && totals.lock.withLock { totals.values } == [[3, 20], [3, 20]])
    }
}
