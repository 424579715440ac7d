// Reductions: sum, mean, max over axes.

extension Tensor {
    /// The sum of all elements, as a scalar tensor.
    public func sum() -> Tensor {
        var total: Float = 0
        for value in data { total += value }
        let count = self.count
        return Tensor(shape: [], data: [total]).recorded("sum", inputs: [self]) { dOut in
            [[Float](repeating: dOut[0], count: count)]
        }
    }
}
