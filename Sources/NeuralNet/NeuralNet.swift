// NeuralNet module.
import TensorCore
