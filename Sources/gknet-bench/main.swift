// gknet-bench: release-mode benchmarks (kernels, model, harmonize).
import TensorCore

print("gknet-bench: no benchmarks yet")
