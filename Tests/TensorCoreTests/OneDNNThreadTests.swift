// oneDNN primitives are cached process-wide (OneDNN.swift) and run on whichever thread calls. The
// regression test of the parallel-test crash (docs/robustness.md, "Concurrent kernels"): Debian's
// oneDNN keeps the library-managed scratchpad in thread-local storage, sized by the primitives a
// thread created, so a cached primitive run on another thread wrote past that thread's buffer
// (heap corruption) or through a null one (SIGSEGV). A crash of this test process is the failure.
import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct OneDNNThreadTests {
    /// A plain-layout (im2col + GEMM inside oneDNN) convolution: it needs a scratchpad of a few MB.
    /// Its geometry is used by no other test, so this test creates the primitives.
    static let geometry = ConvolutionGeometry(
        batch: 2, inputChannels: 32, inputHeight: 46, inputWidth: 42, outputChannels: 24, kernelSize: 3, padding: 1)
    static let backend = ConvolutionBackend.oneDNN(blockedLayout: false)

    /// Forward output, input gradient and weight gradient (+ bias gradient) of one fixed problem.
    static func forwardAndBackward() -> [Float] {
        let g = geometry
        var generator = SplitMix64(seed: 17)
        let x = Tensor.uniform([g.inputCount], low: -1, high: 1, generator: &generator).data
        let w = Tensor.uniform([g.weightCount], low: -0.2, high: 0.2, generator: &generator).data
        let b = Tensor.uniform([g.outputChannels], low: -1, high: 1, generator: &generator).data
        let dOut = Tensor.uniform([g.outputCount], low: -1, high: 1, generator: &generator).data
        var out = [Float](repeating: 0, count: g.outputCount)
        var dx = [Float](repeating: 0, count: g.inputCount)
        var dw = [Float](repeating: 0, count: g.weightCount)
        var db = [Float](repeating: 0, count: g.outputChannels)
        convolutionForward(output: &out, input: x, weight: w, bias: b, geometry: g, training: true, backend: backend)
        convolutionBackward(
            dInput: &dx, dWeight: &dw, dBias: &db, dOutput: dOut, input: x, weight: w, geometry: g, accumulate: false,
            backend: backend)
        return out + dx + dw + db
    }

    /// Runs `body` on a new thread (one that has never called oneDNN) and returns its result.
    static func onNewThread(_ body: @escaping @Sendable () -> [Float]) -> [Float] {
        let result = UncheckedBox(UnsafeMutablePointer<[Float]>.allocate(capacity: 1))
        result.value.initialize(to: [])
        defer {
            result.value.deinitialize(count: 1)
            result.value.deallocate()
        }
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.value.pointee = body()
            done.signal()
        }.start()
        done.wait()
        return result.value.pointee
    }

    @Test(.enabled(if: oneDNN.runsTests, Comment(rawValue: oneDNN.skipMessage)))
    func cachedPrimitiveRunsOnAnotherThread() throws {
        try oneDNN.require()
        #expect(
            oneDNNConvolutionImplementation(geometry: Self.geometry, pass: "training", blockedLayout: false)?.contains(
                "gemm") == true,
            "the case should exercise oneDNN's GEMM convolution, which uses a scratchpad")
        // Primitives created on a new thread, then run on this thread and on two more new threads.
        let creator = Self.onNewThread { Self.forwardAndBackward() }
        let here = Self.forwardAndBackward()
        let elsewhere = Self.onNewThread { Self.forwardAndBackward() }
        let again = Self.onNewThread { Self.forwardAndBackward() }
        #expect(
            creator.count == Self.geometry.outputCount + Self.geometry.inputCount + Self.geometry.weightCount
                + Self.geometry.outputChannels)
        #expect(here == creator, "same primitives, another thread: results differ")
        #expect(elsewhere == creator && again == creator, "same primitives, another thread: results differ")
    }
}
