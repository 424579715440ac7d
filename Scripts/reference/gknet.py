"""PyTorch twin of GKNet (Global-aware Kernel Network, Shen et al., ICCV 2023) as specified in
docs/model.md.

This file is the reference the Swift model (`GKNetModel`) is ported from, line by line. It is
written for clarity, not speed, and uses only operations the Swift TensorCore engine has:
conv2d, convTranspose2d, batch norm, layer norm, ELU, GELU, ReLU, sigmoid, softmax, matmul,
reshape/permute/slice, bilinear resize, concat, avg pool / mean, and `apply_pixel_kernels`
(the harmony-kernel dynamic convolution, here via F.unfold; in Swift a fused op). The one extra
ingredient, the bicubic resize of the LRE positional embedding, is written as two matmuls with
fixed interpolation matrices (`bicubic_resize_matrix`), so Swift needs no bicubic op.

Shapes: N batch, C channels, H W height width, L tokens, D token width, h heads.

    composite (N,3,H,W) in 0..1, mask (N,1,H,W) in 0..1
      -> x = concat[normalize(composite), mask]                         (N,4,H,W)
      -> encoder: F1 (H/2) F2 (H/4) F3 (H/8) F4 (H/16)
      -> LRE: tokens G (N,L,D), G_map (N,D,H/16,W/16)
      -> KPB^3, KPB^2, KPB^1 (SCF inside): P^l and harmony kernels K^l
      -> decoder: bottleneck(concat[F4, G_map]), levels 3,2,1 with X^l += DynConv(X^l, K^l), level 0
      -> head: prediction (normalised RGB) -> de-normalised to 0..1
      -> blend: output = mask * prediction + (1 - mask) * composite        (N,3,H,W) in 0..1

Parameter names (state_dict keys) are the names the Swift model and the safetensors checkpoints
use; docs/model-parameters.md lists them per preset. BatchNorm here has no `num_batches_tracked`
buffer (momentum is fixed at 0.1, so the count is never needed).

Run `python Scripts/reference/gknet.py` for the self-checks (unfold DynConv vs a naive loop,
bicubic matrices vs F.interpolate, attention vs nn.MultiheadAttention, parameter counts).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BATCH_NORM_MOMENTUM = 0.1  # PyTorch default; running = (1 - m) * running + m * batch (unbiased var)
BATCH_NORM_EPSILON = 1e-5
LAYER_NORM_EPSILON = 1e-5
SCF_SQUEEZE_RATIO = 4  # SCF channel-selection bottleneck: max(C / 4, scf_squeeze_floor)
ENCODER_STRIDE = 16  # four stride-2 stages: the deepest map is H/16 x W/16, one LRE token per position
LOSS_MIN_AREA = 100.0  # pixels; iDIH's MaskWeightedMSE(min_area=100)


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------

@dataclass
class GKNetConfig:
    """Mirror of the Swift `GKNetConfiguration` (Codable). JSON keys are the snake_case field names
    below; the Swift property is the camelCase name in the comment (explicit CodingKeys in Swift,
    because `convertFromSnakeCase` would turn `use_lre` into `useLre`, not `useLRE`).

    Defaults are the `paper` preset (docs/model.md, "Layer by layer").
    """

    # encoderWidths: channels of encoder stages 1..4 (= C_1..C_4; decoder level l and KPB^l use C_l).
    encoder_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    # decoderOutputWidth: channels of decoder level 0 (full resolution), input of the RGB head.
    decoder_output_width: int = 32
    # lreWidth: token width D of the Long-distance Reference Extractor (1x1 projection C_4 -> D).
    lre_width: int = 256
    # lreDepth: number of pre-LN transformer blocks.
    lre_depth: int = 4
    # lreHeads: attention heads (head dim = lre_width / lre_heads = 32 in every preset).
    lre_heads: int = 8
    # lreMLPRatio: MLP hidden width = lre_mlp_ratio * D (GELU, exact erf form).
    lre_mlp_ratio: int = 4
    # scfAttentionWidth: SCF query/key width a (split over scf_heads heads).
    scf_attention_width: int = 128
    # scfHeads: SCF attention heads (head dim = a / scf_heads = 32 in every preset).
    scf_heads: int = 4
    # scfSqueezeFloor: SCF channel selection bottleneck = max(C_l / 4, scf_squeeze_floor).
    scf_squeeze_floor: int = 32
    # kernelSize: k of the per-pixel harmony kernels (3 or 5).
    kernel_size: int = 3
    # kernelLevels: number of KPB / modulated decoder levels, deepest first (3: levels 3,2,1; 1: level 3 only).
    kernel_levels: int = 3
    # kernelGroupChannels: channels sharing one kernel; groups g_l = max(C_l / 16, 1).
    kernel_group_channels: int = 16
    # useLRE: transformer blocks + positional embedding; off = tokens are only the 1x1 projection of F4.
    use_lre: bool = True
    # useSCF: Selective Correlation Fusion in each KPB; off = concat[L, resize(G_map)] -> Conv1x1+BN+ELU.
    use_scf: bool = True
    # useKernelModulation: harmony kernels applied in the decoder; off = no kernel head, X^l += P^l.
    use_kernel_modulation: bool = True
    # scfTopK: 0 = off; else keep the k largest correlation logits per query (others -inf) before softmax.
    scf_top_k: int = 0
    # scfBackgroundBias: add log(1 - m_tok + 1e-3) to SCF logits (m_tok = foreground fraction of a token's patch).
    scf_background_bias: bool = False
    # outputBlend: "mask" = mask * prediction + (1 - mask) * composite; "learned" = iDIH blend
    # a = sigmoid(3 * Conv1x1(X^0)), output = a * composite + (1 - a) * prediction.
    output_blend: str = "mask"
    # output: what the head predicts. "image": prediction = denormalize(Conv1x1(X^0)) (the spec);
    # "residual": prediction = composite + Conv1x1(X^0); "affine": a per-pixel colour transform
    # prediction = (I + A') composite + b from Conv1x1(X^0 -> 12) (apply_color_transform). The
    # residual and affine heads are zero at initialisation: the untrained network returns the composite.
    output: str = "image"
    # inputSize: training resolution; the positional embedding is a (inputSize/16)^2 grid,
    # resized bicubically (align_corners=False) for other input sizes.
    input_size: int = 256
    # imageMean / imageStd: ImageNet statistics; RGB in 0..1 is normalised, the mask is not.
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    # ---- derived quantities (not serialised) ----
    def kernel_groups(self, channels: int) -> int:
        return max(channels // self.kernel_group_channels, 1)

    def squeeze_width(self, channels: int) -> int:
        return max(channels // SCF_SQUEEZE_RATIO, self.scf_squeeze_floor)

    @property
    def kernel_level_list(self) -> list[int]:
        """The KPB levels, deepest first: [3, 2, 1][:kernel_levels]."""
        return [3, 2, 1][: self.kernel_levels]

    @property
    def position_grid(self) -> int:
        return self.input_size // ENCODER_STRIDE

    def validate(self):
        assert len(self.encoder_widths) == 4, "four encoder stages"
        assert self.kernel_size in (3, 5), "kernel_size 3 or 5"
        assert 1 <= self.kernel_levels <= 3, "kernel_levels 1..3"
        assert self.output_blend in ("mask", "learned")
        assert self.output in ("image", "residual", "affine")
        assert self.lre_width % self.lre_heads == 0
        assert self.scf_attention_width % self.scf_heads == 0
        for c in self.encoder_widths[:3]:
            assert c % self.scf_heads == 0, f"C_l={c} must split over {self.scf_heads} SCF heads"
            assert c % self.kernel_groups(c) == 0
        assert self.input_size % ENCODER_STRIDE == 0
        assert self.scf_top_k >= 0

    # ---- JSON (keys = snake_case field names) ----
    def to_json_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), sort_keys=False)

    @classmethod
    def from_json_dict(cls, d: dict) -> "GKNetConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        assert not unknown, f"unknown config keys {sorted(unknown)}"
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)


# Swift property name for each JSON key (documentation and a check in the self-test).
SWIFT_NAMES = {
    "encoder_widths": "encoderWidths",
    "decoder_output_width": "decoderOutputWidth",
    "lre_width": "lreWidth",
    "lre_depth": "lreDepth",
    "lre_heads": "lreHeads",
    "lre_mlp_ratio": "lreMLPRatio",
    "scf_attention_width": "scfAttentionWidth",
    "scf_heads": "scfHeads",
    "scf_squeeze_floor": "scfSqueezeFloor",
    "kernel_size": "kernelSize",
    "kernel_levels": "kernelLevels",
    "kernel_group_channels": "kernelGroupChannels",
    "use_lre": "useLRE",
    "use_scf": "useSCF",
    "use_kernel_modulation": "useKernelModulation",
    "scf_top_k": "scfTopK",
    "scf_background_bias": "scfBackgroundBias",
    "output_blend": "outputBlend",
    "output": "output",
    "input_size": "inputSize",
    "image_mean": "imageMean",
    "image_std": "imageStd",
}


def preset(name: str, **overrides) -> GKNetConfig:
    """`paper` (docs/model.md, "Layer by layer"), `small` (every width halved), `tiny` (every width quartered).
    Head dims stay 32; kernel groups are C_l/16 (at least 1)."""
    if name == "paper":
        cfg = GKNetConfig()
    elif name == "small":
        cfg = GKNetConfig(encoder_widths=(32, 64, 128, 256), decoder_output_width=16,
                          lre_width=128, lre_depth=2, lre_heads=4,
                          scf_attention_width=64, scf_heads=2, scf_squeeze_floor=16)
    elif name == "tiny":
        cfg = GKNetConfig(encoder_widths=(16, 32, 64, 128), decoder_output_width=8,
                          lre_width=64, lre_depth=2, lre_heads=2,
                          scf_attention_width=32, scf_heads=1, scf_squeeze_floor=8)
    else:
        raise ValueError(f"unknown preset {name!r} (paper, small, tiny)")
    cfg = dataclasses.replace(cfg, **overrides)
    cfg.validate()
    return cfg


PRESETS = ("paper", "small", "tiny")


# ----------------------------------------------------------------------------------------------
# Primitive helpers (each maps to one Swift TensorCore op or a short composition)
# ----------------------------------------------------------------------------------------------

def apply_pixel_kernels(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Per-pixel grouped dynamic convolution (Swift: `applyPixelKernels`).

    x (N,C,H,W), kernels (N, g*k*k, H, W), g divides C, channel c uses group c // (C/g):
        out[n,c,y,x] = sum_{i,j} K[n, g(c)*k*k + i*k + j, y, x] * x[n, c, y+i-k//2, x+j-k//2]
    with zero padding. F.unfold orders its rows as c*k*k + i*k + j, which matches.
    """
    n, c, h, w = x.shape
    k = kernel_size
    g = kernels.shape[1] // (k * k)
    assert kernels.shape == (n, g * k * k, h, w) and c % g == 0, (x.shape, kernels.shape)
    patches = F.unfold(x, kernel_size=k, padding=k // 2).view(n, g, c // g, k * k, h, w)
    return (patches * kernels.view(n, g, 1, k * k, h, w)).sum(dim=3).view(n, c, h, w)


def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """x (..., in) @ W^T (+ b), written as matmul with the shared rank-2 weight (Swift matmul rule)."""
    y = torch.matmul(x, layer.weight.t())
    return y if layer.bias is None else y + layer.bias


def bicubic_resize_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """(out_size, in_size) matrix R such that R @ v == F.interpolate(v, mode='bicubic',
    align_corners=False) along one axis (PyTorch's cubic convolution, A = -0.75, source index
    scale*(i+0.5)-0.5 not clamped, taps clamped to the border). Built in float64, returned float32.
    """
    a = -0.75

    def near(t):  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    scale = in_size / out_size
    r = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        src = scale * (i + 0.5) - 0.5
        base = math.floor(src)
        t = src - base
        weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
        for tap, wt in enumerate(weights):
            idx = min(max(base - 1 + tap, 0), in_size - 1)
            r[i, idx] += wt
    return r.to(torch.float32)


class BatchNorm2d(nn.Module):
    """BatchNorm over (N, H, W) per channel, PyTorch semantics: training normalises with the batch
    mean and biased variance and updates the running stats with the unbiased variance (momentum 0.1);
    eval uses the running stats. Parameters `weight`, `bias`; buffers `running_mean`, `running_var`
    (no `num_batches_tracked`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=BATCH_NORM_MOMENTUM, eps=BATCH_NORM_EPSILON)


class ConvBNELU(nn.Module):
    """ELU(BN(conv(x))), conv without bias. Names: `.conv.weight`, `.norm.{weight,bias,running_*}`.
    `conv` is a Conv2d or a ConvTranspose2d (weight layout C_in x C_out x 4 x 4)."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        assert conv.bias is None
        self.conv = conv
        self.norm = BatchNorm2d(conv.out_channels)

    def forward(self, x):
        return F.elu(self.norm(self.conv(x)))


class ConvELU(nn.Module):
    """ELU(conv(x) + bias). Name: `.conv.{weight,bias}`."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return F.elu(self.conv(x))


def conv3x3(cin, cout, bias=False):
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


def conv1x1(cin, cout, bias=False):
    return nn.Conv2d(cin, cout, 1, bias=bias)


def down4x4(cin, cout):
    """"Down": Conv 4x4, stride 2, padding 1 (halves H and W)."""
    return nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False)


def up4x4(cin, cout):
    """"Up": ConvTranspose 4x4, stride 2, padding 1 (doubles H and W)."""
    return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)


# ----------------------------------------------------------------------------------------------
# Encoder
# ----------------------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """Res(C) = ELU(x + BN2(Conv3x3_2(ELU(BN1(Conv3x3_1(x)))))). Names conv1, norm1, conv2, norm2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.norm1 = BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.norm2 = BatchNorm2d(channels)

    def forward(self, x):
        y = F.elu(self.norm1(self.conv1(x)))
        return F.elu(x + self.norm2(self.conv2(y)))


class EncoderStage(nn.Module):
    """E_l: Down(C_in -> C_l) + BN + ELU, then Res(C_l). Names `down.*`, `res.*`."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.down = ConvBNELU(down4x4(cin, cout))
        self.res = ResidualBlock(cout)

    def forward(self, x):
        return self.res(self.down(x))


class Encoder(nn.Module):
    """phi_E: four stages; `stages.1` .. `stages.4` produce F_E^1 (H/2) .. F_E^4 (H/16)."""

    def __init__(self, cfg: GKNetConfig):
        super().__init__()
        widths = [4] + list(cfg.encoder_widths)
        self.stages = nn.ModuleDict({str(l): EncoderStage(widths[l - 1], widths[l]) for l in (1, 2, 3, 4)})

    def forward(self, x) -> dict[int, torch.Tensor]:
        features = {}
        for l in (1, 2, 3, 4):
            x = self.stages[str(l)](x)
            features[l] = x
        return features


# ----------------------------------------------------------------------------------------------
# LRE: Long-distance Reference Extractor (docs/model.md, "Long-distance Reference Extractor")
# ----------------------------------------------------------------------------------------------

class MultiHeadSelfAttention(nn.Module):
    """Self-attention with nn.MultiheadAttention's parameter names: `in_proj_weight` (3D x D, rows
    q|k|v), `in_proj_bias` (3D), `out_proj.{weight,bias}`. x (N,L,D) -> (N,L,D)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x):
        n, l, d = x.shape
        h, dh = self.heads, d // self.heads
        qkv = torch.matmul(x, self.in_proj_weight.t()) + self.in_proj_bias           # (N,L,3D)
        qkv = qkv.reshape(n, l, 3, h, dh).permute(2, 0, 3, 1, 4)                    # (3,N,h,L,dh)
        q, k, v = qkv[0], qkv[1], qkv[2]                                            # (N,h,L,dh)
        logits = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(dh))        # (N,h,L,L)
        attention = torch.softmax(logits, dim=-1)
        out = torch.matmul(attention, v)                                            # (N,h,L,dh)
        out = out.permute(0, 2, 1, 3).reshape(n, l, d)                              # (N,L,D)
        return linear(out, self.out_proj)


class TransformerBlock(nn.Module):
    """Pre-LN block: x += MHSA(LN1(x)); x += fc2(GELU(fc1(LN2(x)))).
    Names `norm1`, `attention.*`, `norm2`, `mlp.fc1`, `mlp.fc2`."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPSILON)
        self.attention = MultiHeadSelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPSILON)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(width, mlp_ratio * width)
        self.mlp.fc2 = nn.Linear(mlp_ratio * width, width)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        hidden = F.gelu(linear(self.norm2(x), self.mlp.fc1))  # exact (erf) GELU
        return x + linear(hidden, self.mlp.fc2)


class LongDistanceReferenceExtractor(nn.Module):
    """LRE: tokens of the deepest encoder map, global self-attention.

    F4 (N,C_4,h,w) -> Conv1x1 `project` (C_4 -> D) -> flatten to (N, L=h*w, D)
      -> + `position_embedding` (1, G*G, D), G = input_size/16, bicubically resized to h x w if needed
      -> `blocks.0..depth-1` -> LayerNorm `norm` -> G (N,L,D), G_map (N,D,h,w).
    With use_lre off only `project` exists: G is the projected deepest map.
    """

    def __init__(self, cfg: GKNetConfig):
        super().__init__()
        d = cfg.lre_width
        self.use_lre = cfg.use_lre
        self.grid = cfg.position_grid
        self.project = conv1x1(cfg.encoder_widths[3], d, bias=True)
        if cfg.use_lre:
            self.position_embedding = nn.Parameter(torch.zeros(1, self.grid * self.grid, d))
            self.blocks = nn.ModuleList([TransformerBlock(d, cfg.lre_heads, cfg.lre_mlp_ratio)
                                         for _ in range(cfg.lre_depth)])
            self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPSILON)

    def resized_position_embedding(self, h: int, w: int) -> torch.Tensor:
        """(1, h*w, D). Bicubic (align_corners=False) as out[y',x'] = sum Ry[y',y] Rx[x',x] P[y,x],
        computed with two matmuls: rows first, then columns (Swift: same order)."""
        p = self.position_embedding
        if (h, w) == (self.grid, self.grid):
            return p
        g, d = self.grid, p.shape[-1]
        ry = bicubic_resize_matrix(g, h).to(p.dtype)                        # (h, G)
        rx = bicubic_resize_matrix(g, w).to(p.dtype)                        # (w, G)
        rows = torch.matmul(ry, p.reshape(g, g * d)).reshape(h, g, d)       # (h, G, D)
        cols = torch.matmul(rows.permute(0, 2, 1), rx.t())                  # (h, D, w)
        return cols.permute(0, 2, 1).reshape(1, h * w, d)

    def forward(self, f4: torch.Tensor):
        n, _, h, w = f4.shape
        x = self.project(f4)                                                # (N,D,h,w)
        d = x.shape[1]
        tokens = x.reshape(n, d, h * w).permute(0, 2, 1)                    # (N,L,D)
        if self.use_lre:
            tokens = tokens + self.resized_position_embedding(h, w)
            for block in self.blocks:
                tokens = block(tokens)
            tokens = self.norm(tokens)
        token_map = tokens.permute(0, 2, 1).reshape(n, d, h, w)             # (N,D,h,w)
        return tokens, token_map


# ----------------------------------------------------------------------------------------------
# SCF: Selective Correlation Fusion (docs/model.md, "Selective Correlation Fusion")
# ----------------------------------------------------------------------------------------------

class SelectiveCorrelationFusion(nn.Module):
    """Correlates every local position with every long-distance token, then selects per channel
    between the local feature and the gathered reference.

        Q = `query` Conv1x1(L): C -> a          -> (N,h,HW,a/h)
        K = `key`   Linear(G):  D -> a, no bias -> (N,h,L,a/h)   (a bias would shift each query's
                                                 logits by a constant: no effect, zero gradient)
        V = `value` Linear(G):  D -> C          -> (N,h,L,C/h)
        logits = Q K^T / sqrt(a/h) [+ background bias] [top-k: others -inf]
        A = softmax over the L tokens
        R = `project` Conv1x1(merge_heads(A V)): C -> C   (channel = head * C/h + j)
        s = mean_{H,W}(L + R); z = ReLU(`gate.fc1` s); (alpha, beta) = softmax over 2 of `gate.fc2` z
        out = alpha * L + beta * R
    """

    def __init__(self, channels: int, cfg: GKNetConfig):
        super().__init__()
        a, d = cfg.scf_attention_width, cfg.lre_width
        self.heads = cfg.scf_heads
        self.top_k = cfg.scf_top_k
        self.query = conv1x1(channels, a, bias=True)
        self.key = nn.Linear(d, a, bias=False)  # a key bias adds q.b to a whole row: softmax-invariant
        self.value = nn.Linear(d, channels)
        self.project = conv1x1(channels, channels, bias=True)
        self.gate = nn.Module()
        self.gate.fc1 = nn.Linear(channels, cfg.squeeze_width(channels))
        self.gate.fc2 = nn.Linear(cfg.squeeze_width(channels), 2 * channels)

    def forward(self, local: torch.Tensor, tokens: torch.Tensor, token_bias: torch.Tensor | None):
        n, c, hh, ww = local.shape
        l = tokens.shape[1]
        h = self.heads
        q = self.query(local)                                                   # (N,a,H,W)
        a = q.shape[1]
        dh = a // h
        q = q.reshape(n, h, dh, hh * ww).permute(0, 1, 3, 2)                    # (N,h,HW,dh)
        k = linear(tokens, self.key).reshape(n, l, h, dh).permute(0, 2, 3, 1)   # (N,h,dh,L)
        v = linear(tokens, self.value).reshape(n, l, h, c // h).permute(0, 2, 1, 3)  # (N,h,L,C/h)
        logits = torch.matmul(q, k) * (1.0 / math.sqrt(dh))                    # (N,h,HW,L)
        if token_bias is not None:
            logits = logits + token_bias                                        # (N,1,1,L) broadcast
        if 0 < self.top_k < l:
            logits = logits + top_k_mask(logits.detach(), self.top_k)
        attention = torch.softmax(logits, dim=-1)
        gathered = torch.matmul(attention, v)                                   # (N,h,HW,C/h)
        gathered = gathered.permute(0, 1, 3, 2).reshape(n, c, hh, ww)           # (N,C,H,W)
        reference = self.project(gathered)
        # selective fusion: per-channel softmax over the two sources
        s = (local + reference).mean(dim=(2, 3))                                # (N,C)
        z = F.relu(linear(s, self.gate.fc1))
        weights = torch.softmax(linear(z, self.gate.fc2).reshape(n, 2, c), dim=1)  # (N,2,C)
        alpha = weights[:, 0].reshape(n, c, 1, 1)
        beta = weights[:, 1].reshape(n, c, 1, 1)
        return alpha * local + beta * reference


def top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Constant additive mask: 0 at the k largest entries of the last axis, -inf elsewhere
    (no gradient; Swift builds it outside the graph and adds it)."""
    idx = torch.topk(logits, k, dim=-1).indices
    mask = torch.full_like(logits, float("-inf"))
    return mask.scatter(-1, idx, 0.0)


def background_token_bias(mask: torch.Tensor, token_h: int, token_w: int) -> torch.Tensor:
    """log(1 - m_tok + 1e-3), m_tok = foreground fraction of each token's 16x16 patch
    (avg pool of the mask, kernel = stride = 16). (N,1,H,W) -> (N,1,1,L), no gradient."""
    n = mask.shape[0]
    m_tok = F.avg_pool2d(mask, kernel_size=ENCODER_STRIDE, stride=ENCODER_STRIDE)
    assert m_tok.shape[2:] == (token_h, token_w)
    return torch.log(1.0 - m_tok + 1e-3).reshape(n, 1, 1, token_h * token_w)


# ----------------------------------------------------------------------------------------------
# KPB: Kernel Prediction Block (docs/model.md, "Kernel Prediction Blocks")
# ----------------------------------------------------------------------------------------------

class KernelHead(nn.Module):
    """K = `conv2` Conv1x1(ELU(`conv1` Conv3x3(P))): C -> g*k*k, no activation. `conv2` is
    zero-initialised by `init_weights` (the kernels then start at 0: the decoder is a plain U-Net)."""

    def __init__(self, channels: int, groups: int, kernel_size: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv1x1(channels, groups * kernel_size * kernel_size, bias=True)

    def forward(self, p):
        return self.conv2(F.elu(self.conv1(p)))


class KernelPredictionBlock(nn.Module):
    """KPB^l (C = C_l, previous width C_prev = C_{l+1}, or D for l = 3):

        U = `up`    ELU(BN(Conv3x3(bilinear_resize(P^{l+1}, H_l, W_l))))   C_prev -> C
        L = `merge` ELU(BN(Conv1x1(concat[U, F_E^l])))                      2C -> C
        P = `scf`(L, G)                  (use_scf off: `fuse` ELU(BN(Conv1x1(concat[L, resize(G_map)]))), C+D -> C)
        K = `kernel_head`(P)             (only with use_kernel_modulation)
    """

    def __init__(self, cfg: GKNetConfig, previous: int, channels: int):
        super().__init__()
        self.use_scf = cfg.use_scf
        self.up = ConvBNELU(conv3x3(previous, channels))
        self.merge = ConvBNELU(conv1x1(2 * channels, channels))
        if cfg.use_scf:
            self.scf = SelectiveCorrelationFusion(channels, cfg)
        else:
            self.fuse = ConvBNELU(conv1x1(channels + cfg.lre_width, channels))
        if cfg.use_kernel_modulation:
            self.kernel_head = KernelHead(channels, cfg.kernel_groups(channels), cfg.kernel_size)
        else:
            self.kernel_head = None

    def forward(self, previous, skip, tokens, token_map, token_bias):
        hh, ww = skip.shape[2:]
        u = self.up(F.interpolate(previous, size=(hh, ww), mode="bilinear", align_corners=False))
        local = self.merge(torch.cat([u, skip], dim=1))
        if self.use_scf:
            p = self.scf(local, tokens, token_bias)
        else:
            g = F.interpolate(token_map, size=(hh, ww), mode="bilinear", align_corners=False)
            p = self.fuse(torch.cat([local, g], dim=1))
        kernels = self.kernel_head(p) if self.kernel_head is not None else None
        return p, kernels


# ----------------------------------------------------------------------------------------------
# Decoder with harmony kernel modulation (docs/model.md, "Harmony kernel modulation") and the head
# ----------------------------------------------------------------------------------------------

class DecoderLevel(nn.Module):
    """D_l, l = 3,2,1: X = `up` ELU(BN(ConvT4x4 s2(X))); X = X + F_E^l; X = `refine` ELU(BN(Conv3x3(X)));
    then (outside) X += DynConv(X, K^l) or X += P^l."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = ConvBNELU(up4x4(cin, cout))
        self.refine = ConvBNELU(conv3x3(cout, cout))

    def forward(self, x, skip):
        return self.refine(self.up(x) + skip)


class OutputLevel(nn.Module):
    """D_0: X = `up` ELU(BN(ConvT4x4 s2(X))); X = `refine` ELU(Conv3x3(X) + b) (no skip, no BN)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = ConvBNELU(up4x4(cin, cout))
        self.refine = ConvELU(conv3x3(cout, cout, bias=True))

    def forward(self, x):
        return self.refine(self.up(x))


class Decoder(nn.Module):
    """phi_D: `bottleneck` ELU(BN(Conv1x1(concat[F_E^4, G_map]))) C_4+D -> C_4, `levels.3`, `levels.2`,
    `levels.1` (skips + modulation), `levels.0` (full resolution, decoder_output_width channels)."""

    def __init__(self, cfg: GKNetConfig):
        super().__init__()
        c1, c2, c3, c4 = cfg.encoder_widths
        self.kernel_size = cfg.kernel_size
        self.use_kernel_modulation = cfg.use_kernel_modulation
        self.bottleneck = ConvBNELU(conv1x1(c4 + cfg.lre_width, c4))
        self.levels = nn.ModuleDict({
            "3": DecoderLevel(c4, c3),
            "2": DecoderLevel(c3, c2),
            "1": DecoderLevel(c2, c1),
            "0": OutputLevel(c1, cfg.decoder_output_width),
        })

    def forward(self, features, token_map, modulation: dict, trace: dict | None = None):
        """modulation[l] = K^l (kernels) or P^l (use_kernel_modulation off) for the KPB levels."""
        x = self.bottleneck(torch.cat([features[4], token_map], dim=1))
        if trace is not None:
            trace["D4"] = x
        for l in (3, 2, 1):
            x = self.levels[str(l)](x, features[l])
            if l in modulation:
                if self.use_kernel_modulation:
                    x = x + apply_pixel_kernels(x, modulation[l], self.kernel_size)
                else:
                    x = x + modulation[l]
            if trace is not None:
                trace[f"D{l}"] = x
        x = self.levels["0"](x)
        if trace is not None:
            trace["D0"] = x
        return x


class GKNet(nn.Module):
    """composite (N,3,H,W) in 0..1 and mask (N,1,H,W) -> harmonized image (N,3,H,W) in 0..1.
    H and W must be multiples of 16. Top-level names: `encoder`, `lre`, `kpb.{3,2,1}`, `decoder`,
    `head` (Conv1x1 D0 -> 3, prediction in normalised space), `blend` (learned blend only)."""

    def __init__(self, cfg: GKNetConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        c = cfg.encoder_widths
        self.register_buffer("image_mean", torch.tensor(cfg.image_mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(cfg.image_std).reshape(1, 3, 1, 1), persistent=False)
        self.encoder = Encoder(cfg)
        self.lre = LongDistanceReferenceExtractor(cfg)
        previous = {3: cfg.lre_width, 2: c[2], 1: c[1]}
        self.kpb = nn.ModuleDict({str(l): KernelPredictionBlock(cfg, previous[l], c[l - 1])
                                  for l in cfg.kernel_level_list})
        self.decoder = Decoder(cfg)
        self.head = conv1x1(cfg.decoder_output_width, 12 if cfg.output == "affine" else 3, bias=True)
        if cfg.output_blend == "learned":
            self.blend = conv1x1(cfg.decoder_output_width, 1, bias=True)

    def normalize(self, rgb):
        return (rgb - self.image_mean) / self.image_std

    def denormalize(self, rgb):
        return rgb * self.image_std + self.image_mean

    def forward(self, composite, mask, trace: dict | None = None):
        """`trace`, if a dict, receives the named intermediates of docs/model.md "Layer by layer" (E1..E4, G, G_map,
        P3, K3, ..., D4..D0, prediction)."""
        n, _, hh, ww = composite.shape
        assert hh % ENCODER_STRIDE == 0 and ww % ENCODER_STRIDE == 0, composite.shape
        x = torch.cat([self.normalize(composite), mask], dim=1)                # (N,4,H,W)
        features = self.encoder(x)                                             # {1..4}
        tokens, token_map = self.lre(features[4])                              # (N,L,D), (N,D,h,w)
        token_bias = None
        if self.cfg.scf_background_bias:
            token_bias = background_token_bias(mask, token_map.shape[2], token_map.shape[3])
        modulation = {}
        p = token_map
        for l in self.cfg.kernel_level_list:
            p, kernels = self.kpb[str(l)](p, features[l], tokens, token_map, token_bias)
            modulation[l] = kernels if self.cfg.use_kernel_modulation else p
            if trace is not None:
                trace[f"P{l}"] = p
                if kernels is not None:
                    trace[f"K{l}"] = kernels
        if trace is not None:
            trace.update({f"E{l}": features[l] for l in (1, 2, 3, 4)})
            trace["G"] = tokens
            trace["G_map"] = token_map
        x0 = self.decoder(features, token_map, modulation, trace)
        head = self.head(x0)                                                   # (N,3 or 12,H,W)
        if self.cfg.output == "image":
            prediction = self.denormalize(head)                                # (N,3,H,W), 0..1 space
        elif self.cfg.output == "residual":
            prediction = composite + head
        else:
            prediction = apply_color_transform(head, composite)
        if trace is not None:
            trace["prediction"] = prediction
        if self.cfg.output_blend == "mask":
            return mask * prediction + (1.0 - mask) * composite
        a = torch.sigmoid(3.0 * self.blend(x0))                                # (N,1,H,W)
        return a * composite + (1.0 - a) * prediction


def apply_color_transform(transform, rgb):
    """Per-pixel affine colour transform: out = (I + A') rgb + b. transform (N,12,H,W): channels
    3j..3j+2 hold column j of A' (channel 3j + c = A'[c][j]), channels 9..11 hold b; rgb (N,3,H,W)."""
    out = rgb + transform[:, 9:12]
    for j in range(3):
        out = out + transform[:, 3 * j:3 * j + 3] * rgb[:, j:j + 1]
    return out


# ----------------------------------------------------------------------------------------------
# Loss
# ----------------------------------------------------------------------------------------------

def foreground_normalized_mse(output, target, mask, min_area: float = LOSS_MIN_AREA) -> torch.Tensor:
    """Foreground-normalised MSE (iDIH MaskWeightedMSE), computed in the 0..1 RGB space of the
    model's output (not the ImageNet-normalised space iDIH uses: the loss then equals
    fMSE / 255^2 up to the min-area clamp and is independent of the normalisation constants):

        loss = mean_n [ sum_{c,y,x} (output - target)^2 / (3 * max(sum_{y,x} mask_n, min_area)) ]

    The sum runs over all pixels (with the mask blend the background error is 0). min_area = 100
    pixels, an absolute count at every resolution (iDIH's value at 256x256). The denominator is a
    constant (no gradient through the mask).
    """
    n = output.shape[0]
    squared = ((output - target) ** 2).reshape(n, -1).sum(dim=1)                # (N,)
    area = mask.detach().reshape(n, -1).sum(dim=1).clamp_min(min_area)        # (N,)
    return (squared / (output.shape[1] * area)).mean()


# ----------------------------------------------------------------------------------------------
# Initialisation and state dict helpers
# ----------------------------------------------------------------------------------------------

def init_weights(model: GKNet, zero_kernel_heads: bool = True):
    """Spec section 6: convolutions Xavier-Gaussian with magnitude 2 (std = sqrt(4/(fan_in+fan_out)),
    the iDIH initialiser), biases 0; transformer / SCF linears and the positional embedding
    truncated normal std 0.02 (cut at +-2 std); norms weight 1, bias 0, running stats 0/1; the
    kernel heads' last conv zero (so the untrained network is the plain U-Net path)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_normal_(module.weight, gain=math.sqrt(2.0))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, MultiHeadSelfAttention):
            nn.init.trunc_normal_(module.in_proj_weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(module.in_proj_bias)
        elif isinstance(module, (nn.LayerNorm, BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if model.cfg.use_lre:
        nn.init.trunc_normal_(model.lre.position_embedding, std=0.02, a=-0.04, b=0.04)
    if model.cfg.output != "image":
        nn.init.zeros_(model.head.weight)
        nn.init.zeros_(model.head.bias)
    if zero_kernel_heads:
        for kpb in model.kpb.values():
            if kpb.kernel_head is not None:
                nn.init.zeros_(kpb.kernel_head.conv2.weight)
                nn.init.zeros_(kpb.kernel_head.conv2.bias)


def build(cfg: GKNetConfig, seed: int = 0, zero_kernel_heads: bool = True) -> GKNet:
    torch.manual_seed(seed)
    model = GKNet(cfg)
    init_weights(model, zero_kernel_heads=zero_kernel_heads)
    return model


def parameter_table(model: GKNet) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, kind) for every parameter ('param') and BatchNorm buffer ('buffer'), in
    state_dict order."""
    params = {n for n, _ in model.named_parameters()}
    return [(n, tuple(t.shape), "param" if n in params else "buffer") for n, t in model.state_dict().items()]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# Self-checks
# ----------------------------------------------------------------------------------------------

def _self_check():
    torch.manual_seed(0)
    # DynConv via unfold == naive loop
    for (n, c, h, w, g, k) in [(1, 8, 5, 5, 2, 3), (2, 6, 4, 7, 3, 5), (1, 4, 3, 3, 1, 3)]:
        x = torch.randn(n, c, h, w, dtype=torch.float64)
        kern = torch.randn(n, g * k * k, h, w, dtype=torch.float64)
        ref = torch.zeros_like(x)
        for ci in range(c):
            gi = ci // (c // g)
            for i in range(k):
                for j in range(k):
                    sh = F.pad(x[:, ci], (k // 2, k // 2, k // 2, k // 2))[:, i:i + h, j:j + w]
                    ref[:, ci] += kern[:, gi * k * k + i * k + j] * sh
        assert torch.allclose(apply_pixel_kernels(x, kern, k), ref), "apply_pixel_kernels"
    # bicubic matrices == F.interpolate
    for (gi, ho, wo) in [(16, 4, 4), (16, 4, 6), (4, 8, 12), (16, 20, 16), (8, 3, 5)]:
        p = torch.randn(1, 7, gi, gi, dtype=torch.float64)
        ref = F.interpolate(p, size=(ho, wo), mode="bicubic", align_corners=False)
        ry = bicubic_resize_matrix(gi, ho).double()
        rx = bicubic_resize_matrix(gi, wo).double()
        mine = torch.einsum("yi,cij,xj->cyx", ry, p[0], rx)
        assert torch.allclose(mine, ref[0], atol=1e-6), ("bicubic", gi, ho, wo, (mine - ref[0]).abs().max())
    # LRE resize path == F.interpolate on the (D,G,G) grid
    cfg = preset("tiny")
    lre = LongDistanceReferenceExtractor(cfg)
    nn.init.normal_(lre.position_embedding)
    grid = lre.position_embedding.reshape(cfg.position_grid, cfg.position_grid, -1).permute(2, 0, 1)[None]
    ref = F.interpolate(grid, size=(4, 6), mode="bicubic", align_corners=False)[0]
    mine = lre.resized_position_embedding(4, 6).reshape(4, 6, -1).permute(2, 0, 1)
    assert torch.allclose(mine, ref, atol=1e-5), "position embedding resize"
    # attention == nn.MultiheadAttention with the same weights
    attn = MultiHeadSelfAttention(64, 2)
    nn.init.normal_(attn.in_proj_weight, std=0.1)
    nn.init.normal_(attn.in_proj_bias, std=0.1)
    ref_mha = nn.MultiheadAttention(64, 2, batch_first=True)
    ref_mha.load_state_dict(attn.state_dict())
    x = torch.randn(2, 10, 64)
    assert torch.allclose(attn(x), ref_mha(x, x, x, need_weights=False)[0], atol=1e-5), "attention"
    # config JSON round trip and Swift names
    assert set(SWIFT_NAMES) == {f.name for f in dataclasses.fields(GKNetConfig)}
    for name in PRESETS:
        c = preset(name)
        assert GKNetConfig.from_json_dict(json.loads(c.to_json())) == c
    # zero kernel heads: modulation changes nothing
    m = build(preset("tiny")).eval()
    comp, mask = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.5).float()
    with torch.no_grad():
        out = m(comp, mask)
        assert torch.equal(out * (1 - mask), comp * (1 - mask)), "background exact"
    # parameter counts per preset
    targets = {"paper": 18.73e6, "small": 4.31e6, "tiny": 1.09e6}
    for name in PRESETS:
        count = count_parameters(GKNet(preset(name)))
        print(f"{name:6s} {count:>11,d} parameters (target {targets[name] / 1e6:.2f} M, "
              f"{100 * (count / targets[name] - 1):+.2f} %)")
    # every ablation builds and runs
    for flip in [dict(use_lre=False), dict(use_scf=False), dict(use_kernel_modulation=False),
                 dict(kernel_size=5), dict(kernel_levels=1), dict(kernel_levels=2), dict(scf_top_k=8),
                 dict(scf_background_bias=True), dict(output_blend="learned")]:
        m = build(preset("tiny", **flip), zero_kernel_heads=False)
        out = m(comp, mask)
        foreground_normalized_mse(out, comp, mask).backward()
        assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all(), flip
    print("self-check passed")


if __name__ == "__main__":
    torch.set_num_threads(1)
    _self_check()
