// Branch-free float32 exp that the compiler vectorises (libm's expf is a call per element, about
// 5-10 ns; this is about 1 ns per element with SSE). Used by softmax, ELU, sigmoid and GELU.

/// e^x for float32, within 2 ulp of the correctly rounded value for x in [-87.33, 88.72]
/// (see `exponentialParts`).
///
/// Edge cases: x < -87.34 (where e^x is below the smallest normal float) gives 0 (libm gives
/// a subnormal, at most 1.2e-38); x > 88.72 gives +infinity; -infinity gives 0; NaN gives NaN.
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let (q, power) = exponentialParts(x)
    var y = (1 + q) * power
    y = x < exponentialLowest ? 0 : y
    y = x > exponentialHighest ? .infinity : y
    return x != x ? x : y
}

/// e^x - 1 for float32 without the cancellation of `fastExp(x) - 1` near 0 (like libm's expm1):
/// within a few ulp for |x| < ln 2 / 2, and within 1e-7 absolute elsewhere. x < -87.34 gives -1.
@inline(__always)
public func fastExpMinusOne(_ x: Float) -> Float {
    let (q, power) = exponentialParts(x)
    // 2^n (1 + q) - 1 = 2^n q + (2^n - 1); for |x| < ln 2 / 2, n = 0 and this is q itself.
    var y = power * q + (power - 1)
    y = x < exponentialLowest ? -1 : y
    y = x > exponentialHighest ? .infinity : y
    return x != x ? x : y
}

let exponentialLowest: Float = -87.336_54
let exponentialHighest: Float = 88.722_83

/// e^x = 2^n (1 + q): Cody-Waite reduction x = n ln 2 + r, |r| <= ln 2 / 2, and
/// q = r + r^2 P(r) with Cephes' expf polynomial P.
@inline(__always)
func exponentialParts(_ x: Float) -> (q: Float, power: Float) {
    let clamped = x < exponentialLowest ? exponentialLowest : (x > exponentialHighest ? exponentialHighest : x)
    // Adding 1.5 * 2^23 rounds to an integer that stays in the low mantissa bits.
    let shifter: Float = 12_582_912
    let scaled = clamped * 1.442_695_04
    // n <= 127 keeps 2^n finite; above 127 ln 2 the polynomial covers r up to ln 2.
    return exponentialParts(clamped, shifted: (scaled > 127 ? 127 : scaled) + shifter)
}

/// The shared tail of `exponentialParts` and `nonPositiveExponentialParts`: with t = n + 1.5 * 2^23
/// (n the integer nearest to clamped / ln 2, already bounded), e^clamped = (1 + q) * 2^n.
@inline(__always)
private func exponentialParts(_ clamped: Float, shifted t: Float) -> (q: Float, power: Float) {
    let n = t - 12_582_912
    // r = x - n ln 2, with ln 2 split in two (0.693359375 is exact in 9 bits).
    let r = (clamped - n * 0.693_359_375) - n * -2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    // 2^n from the exponent bits: (n + 127) << 23, with n read from t's mantissa.
    let power = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
    return (p * r * r + r, power)
}

/// out[i] = e^(x[i] - largest) for `largest` >= every x[i] (vectorised; out and x must not overlap).
@inline(__always)
func exponentials(
    _ output: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, count: Int, shift largest: Float
) {
    for i in 0..<count { output[i] = fastExpOfNonPositive(input[i] - largest) }
}

/// e^x for x <= 0 (softmax's x - max): `fastExp` without the overflow handling, about a quarter
/// fewer instructions. Same accuracy; x < -87.34 and -infinity give 0; NaN propagates (through the
/// arithmetic, no extra test).
@inline(__always)
func fastExpOfNonPositive(_ x: Float) -> Float {
    let (q, power) = nonPositiveExponentialParts(x)
    let y = (1 + q) * power
    return x < exponentialLowest ? 0 : y
}

/// e^x - 1 for x <= 0 (ELU's negative side), like `fastExpMinusOne` without the overflow handling.
/// x < -87.34 and -infinity give -1; NaN propagates.
@inline(__always)
func fastExpMinusOneOfNonPositive(_ x: Float) -> Float {
    let (q, power) = nonPositiveExponentialParts(x)
    let y = power * q + (power - 1)
    return x < exponentialLowest ? -1 : y
}

/// `exponentialParts` for x <= 0 (n >= -126 after the lower clamp, so 2^n needs no upper guard).
@inline(__always)
func nonPositiveExponentialParts(_ x: Float) -> (q: Float, power: Float) {
    let clamped = x < exponentialLowest ? exponentialLowest : x
    return exponentialParts(clamped, shifted: clamped * 1.442_695_04 + 12_582_912)
}

/// p[i] = e^(p[i] - largest) in place, for `largest` >= every p[i] (softmax rows); one pointer,
/// so the loop vectorises without an overlap check.
@inline(__always)
func exponentialsInPlace(_ p: UnsafeMutablePointer<Float>, count: Int, shift largest: Float) {
    for i in 0..<count { p[i] = fastExpOfNonPositive(p[i] - largest) }
}

/// Σ a[i] b[i] in float, over eight running sums (a vectorisable reduction).
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
    var s = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
    var i = 0
    while i + 8 <= n {
        s.0 += a[i] * b[i]
        s.1 += a[i + 1] * b[i + 1]
        s.2 += a[i + 2] * b[i + 2]
        s.3 += a[i + 3] * b[i + 3]
        s.4 += a[i + 4] * b[i + 4]
        s.5 += a[i + 5] * b[i + 5]
        s.6 += a[i + 6] * b[i + 6]
        s.7 += a[i + 7] * b[i + 7]
        i += 8
    }
    while i < n {
        s.0 += a[i] * b[i]
        i += 1
    }
    return ((s.0 + s.1) + (s.2 + s.3)) + ((s.4 + s.5) + (s.6 + s.7))
}

/// The largest of `count >= 1` values (four running maxima, so the loop is not one long chain).
@inline(__always)
func maximum(_ p: UnsafePointer<Float>, count n: Int) -> Float {
    var m0 = p[0], m1 = p[0], m2 = p[0], m3 = p[0]
    var i = 0
    while i + 4 <= n {
        m0 = p[i] > m0 ? p[i] : m0
        m1 = p[i + 1] > m1 ? p[i + 1] : m1
        m2 = p[i + 2] > m2 ? p[i + 2] : m2
        m3 = p[i + 3] > m3 ? p[i + 3] : m3
        i += 4
    }
    while i < n {
        m0 = p[i] > m0 ? p[i] : m0
        i += 1
    }
    return Swift.max(Swift.max(m0, m1), Swift.max(m2, m3))
}
