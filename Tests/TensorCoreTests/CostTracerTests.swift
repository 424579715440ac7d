// CostTracer: ops report their multiply-accumulates from their geometry, with the weight they
// apply and the scopes around them; nothing is recorded outside a trace.
import GKNetTensorCore
import Testing

@Suite struct CostTracerTests {
    @Test func opsReportTheirMACs() {
        let x = Tensor.zeros([2, 4, 8, 8])
        let weight = Tensor.zeros([6, 2, 3, 3])  // groups 2: C/G = 2
        let (_, entries) = CostTracer.trace {
            _ = conv2d(x, weight: weight, padding: 1, groups: 2)  // 2 x 6 x 8 x 8 outputs, 2 x 9 each
            _ = convTranspose2d(x, weight: Tensor.zeros([4, 3, 4, 4]), stride: 2, padding: 1)  // per input pixel
            _ = matmul(Tensor.zeros([3, 5, 7]), Tensor.zeros([3, 7, 2]))
            _ = linear(Tensor.zeros([10, 7]), weight: Tensor.zeros([3, 7]))
            _ = applyPixelKernels(x, kernels: Tensor.zeros([2, 9, 8, 8]), kernelSize: 3)
            _ = tokenAttention(
                queries: Tensor.zeros([1, 2, 4, 16]), keys: Tensor.zeros([1, 2, 5, 4]),
                values: Tensor.zeros([1, 2, 5, 3]), scale: 1)
            _ = resizeBicubic(Tensor.zeros([1, 2, 4, 4]), height: 8, width: 6)  // two matmuls: rows, then columns
            _ = resizeBilinear(x, height: 4, width: 4)  // not counted
            _ = (x + x).relu()  // not counted
        }
        #expect(
            entries.map(\.op) == [
                "conv2d", "convTranspose2d", "matmul", "linear", "applyPixelKernels", "tokenAttention", "resizeBicubic",
            ])
        #expect(
            entries.map(\.macs) == [
                2 * 6 * 64 * 2 * 9, 2 * 4 * 3 * 16 * 64, 3 * 5 * 7 * 2, 10 * 7 * 3, 2 * 4 * 64 * 9,
                2 * 16 * 5 * (4 + 3), 2 * 8 * (4 * 4 + 4 * 6),
            ])
        #expect(entries[0].parameter == ObjectIdentifier(weight))
        #expect(entries[2].parameter == nil)
    }

    @Test func scopesNestAndNothingIsRecordedOutsideATrace() {
        final class Owner {}
        let (outer, inner) = (Owner(), Owner())
        _ = matmul(Tensor.zeros([2, 2]), Tensor.zeros([2, 2]))  // no trace running: nothing to see
        let (value, entries) = CostTracer.trace { () -> Int in
            CostTracer.scope(outer) {
                _ = matmul(Tensor.zeros([2, 2]), Tensor.zeros([2, 2]))
                CostTracer.scope(inner) { _ = matmul(Tensor.zeros([1, 2]), Tensor.zeros([2, 2])) }
            }
            return 7
        }
        #expect(value == 7)
        #expect(entries.map(\.macs) == [8, 4])
        #expect(entries[0].scopes == [ObjectIdentifier(outer)])
        #expect(entries[1].scopes == [ObjectIdentifier(outer), ObjectIdentifier(inner)])
        // A scope outside a trace only runs its body.
        #expect(CostTracer.scope(outer) { 3 } == 3)
    }
}
