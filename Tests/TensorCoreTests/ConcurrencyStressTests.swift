import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// Several threads running ops at once (as parallel tests or a data loader beside training do):
/// every thread must get the results a lone thread gets. Exercises the thread pool together with
/// oneDNN and OpenBLAS calls made from different threads.
@Suite struct ConcurrencyStressTests {
    /// A mixed workload: convolution (oneDNN) forward and backward, resize, token attention, matmul,
    /// batch norm + ELU and a softmax, with a deterministic result digest.
    static func workload(seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        let x = Tensor.uniform([2, 8, 20, 18], low: -1, high: 1, generator: &generator, requiresGrad: true)
        let w = Tensor.uniform([8, 8, 3, 3], low: -0.3, high: 0.3, generator: &generator, requiresGrad: true)
        let y = conv2d(x, weight: w, padding: 1)
        let up = resizeBilinear(y, height: 37, width: 31)
        let normalized = batchNormELU(
            up, weight: nil, bias: nil, runningMean: Tensor.zeros([8]), runningVariance: Tensor.ones([8]),
            training: true)
        let q = normalized.reshaped([2, 2, 4, 37 * 31])
        let k = Tensor.uniform([2, 2, 50, 4], low: -1, high: 1, generator: &generator, requiresGrad: true)
        let v = Tensor.uniform([2, 2, 50, 3], low: -1, high: 1, generator: &generator, requiresGrad: true)
        let attended = tokenAttention(queries: q, keys: k, values: v, scale: 0.5)
        let mixed = matmul(attended.reshaped([2, 6, 37 * 31]), attended.reshaped([2, 6, 37 * 31]).transposed(1, 2))
            .softmax(axis: -1)
        let loss = mixed.sum() + attended.sum()
        loss.backward()
        return mixed.data + x.grad! + w.grad! + k.grad! + v.grad!
    }

    @Test func opsOnSeveralThreadsMatchOneThread() {
        let seeds: [UInt64] = [1, 2, 3, 4]
        let reference = seeds.map { Self.workload(seed: $0) }
        let count = seeds.count * 3
        // Each thread writes its own slot (no shared array mutation); read after all have joined.
        let slots = UnsafeMutablePointer<[Float]>.allocate(capacity: count)
        slots.initialize(repeating: [], count: count)
        defer {
            slots.deinitialize(count: count)
            slots.deallocate()
        }
        let box = UncheckedBox(slots)
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread {
                box.value[index] = Self.workload(seed: seeds[index % seeds.count])
                group.leave()
            }.start()
        }
        group.wait()
        for (index, result) in UnsafeBufferPointer(start: slots, count: count).enumerated() {
            let expected = reference[index % seeds.count]
            let c = compare(
                Tensor(shape: [result.count], data: result), Tensor(shape: [expected.count], data: expected),
                relativeTolerance: 1e-5, absoluteTolerance: 1e-6, label: "thread \(index)")
            #expect(c.passed, "\(c)")
        }
    }
}

/// Hands the slots' pointer to the test threads (they write disjoint slots, joined before reading).
final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
