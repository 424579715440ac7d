// Harmonization module.
import TensorCore
