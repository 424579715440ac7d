import Foundation
import GKNetTensorCore
import Testing

/// The vectorisable exp used by softmax, ELU, sigmoid and GELU, against libm in Double.
@Suite struct FastMathTests {
    @Test func expIsWithinTwoUlpOverTheNormalRange() {
        var worst = 0.0
        var x: Float = -87.3
        while x < 88.7 {
            let exact = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(fastExp(x)) - exact) / exact)
            x += 0.000_731
        }
        #expect(worst < 2.5e-7, "worst relative error \(worst)")
    }

    @Test func expMinusOneKeepsItsDigitsNearZero() {
        var worstRelative = 0.0, worstAbsolute = 0.0
        var x: Float = -20
        while x < 20 {
            let exact = Foundation.expm1(Double(x))
            let error = abs(Double(fastExpMinusOne(x)) - exact)
            worstAbsolute = max(worstAbsolute, min(error, error / abs(exact)))
            if abs(x) < 0.34 && x != 0 { worstRelative = max(worstRelative, error / abs(exact)) }
            x += 0.000_377
        }
        for tiny: Float in [1e-7, -1e-7, 3e-5, -3e-5, 1e-3, -1e-3] {
            let exact = Foundation.expm1(Double(tiny))
            worstRelative = max(worstRelative, abs(Double(fastExpMinusOne(tiny)) - exact) / abs(exact))
        }
        #expect(worstRelative < 5e-7, "worst relative error near 0: \(worstRelative)")
        #expect(worstAbsolute < 5e-7, "worst error (absolute or relative, whichever is smaller): \(worstAbsolute)")
    }

    @Test func specialValues() {
        #expect(fastExp(0) == 1)
        #expect(fastExp(-.infinity) == 0)
        #expect(fastExp(.infinity) == .infinity)
        #expect(fastExp(100) == .infinity)
        #expect(fastExp(-100) == 0)
        #expect(fastExp(.nan).isNaN)
        #expect(fastExpMinusOne(0) == 0)
        #expect(fastExpMinusOne(-.infinity) == -1)
        #expect(fastExpMinusOne(-100) == -1)
        #expect(fastExpMinusOne(.infinity) == .infinity)
        #expect(fastExpMinusOne(.nan).isNaN)
        // the largest finite results
        #expect(fastExp(88.72).isFinite && fastExp(88.72) > 3.3e38)
    }
}

extension FastMathTests {
    /// ELU and softmax use the x <= 0 variants; they must agree with libm as well.
    @Test func nonPositiveVariantsThroughTheOps() {
        let inputs: [Float] = [-100, -87.5, -20, -1, -0.3, -1e-3, -1e-6, 0, 1e-6, 0.5, 3]
        let y = Tensor(shape: [inputs.count], data: inputs).elu()
        for (x, value) in zip(inputs, y.data) {
            let exact = x > 0 ? Double(x) : Foundation.expm1(Double(x))
            #expect(
                abs(Double(value) - exact) <= 3e-7 * max(1e-30, abs(exact)) || abs(Double(value) - exact) < 1e-37,
                "elu(\(x)) = \(value), expected \(exact)")
        }
        #expect(Tensor(shape: [2], data: [.nan, -1]).elu().data[0].isNaN)
        let row = Tensor(shape: [1, 4], data: [0, -.infinity, 2, -50]).softmax(axis: 1)
        let total = 1 + Foundation.exp(-2.0) + Foundation.exp(-52.0)
        let expected = [Foundation.exp(-2.0) / total, 0, 1 / total, Foundation.exp(-52.0) / total]
        for (value, exact) in zip(row.data, expected) {
            #expect(abs(Double(value) - exact) <= 3e-7 * exact + 1e-38, "softmax \(value) vs \(exact)")
        }
    }
}
