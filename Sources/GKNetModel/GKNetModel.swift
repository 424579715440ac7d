// GKNetModel module.
import TensorCore
