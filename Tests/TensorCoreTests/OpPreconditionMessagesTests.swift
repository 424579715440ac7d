import GKNetTensorCore
import Testing

/// Malformed calls stop with a precondition message that names the shapes involved. Each case runs
/// in a child process (Swift Testing exit tests) and reads its standard error.
@Suite struct OpPreconditionMessagesTests {
    /// The standard error of an exit test, as text.
    static func standardError(_ result: ExitTest.Result?) -> String {
        String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    }

    @Test func reshapeWithWrongElementCount() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).reshaped([4])
        }
        let message = Self.standardError(result)
        #expect(message.contains("reshaped: cannot reshape tensor of shape [2, 3] (6 elements) to [4]"), "\(message)")
    }

    @Test func concatenateWithMismatchedShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.concatenated([Tensor.zeros([2, 3]), Tensor.zeros([3, 3])], axis: 1)
        }
        let message = Self.standardError(result)
        #expect(message.contains("[[2, 3], [3, 3]]"), "\(message)")
    }

    @Test func layerNormWithWrongWeight() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = layerNorm(Tensor.zeros([2, 5]), normalizedShape: [5], weight: Tensor.zeros([4]), bias: nil)
        }
        let message = Self.standardError(result)
        #expect(message.contains("input [2, 5]") && message.contains("weight [4]"), "\(message)")
    }

    @Test func softmaxWithBadAxis() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 5]).softmax(axis: 2)
        }
        let message = Self.standardError(result)
        #expect(message.contains("softmax: axis 2") && message.contains("[2, 5]"), "\(message)")
    }
}
