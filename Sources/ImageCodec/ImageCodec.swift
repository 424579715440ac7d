// ImageCodec module.
import TensorCore
