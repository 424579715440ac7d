import Foundation
import Testing
import TensorCore

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
