"""UniFormer (video): convolutions in the shallow stages, global attention in the deep ones (Li et al., ICLR 2022).

The official video model (Sense-X/UniFormer, ``video_classification/slowfast/models/uniformer.py``,
class ``Uniformer``) with its default config (no split attention, no ``STD`` down-sampling,
``qkv_bias=True``), taking ONE clip (B, 3, T, H, W) instead of a list. Any T works:
``patch_embed1`` is the only temporal down-sampling (T' = ceil(T/2)); the rest is
convolution or attention over all T'*H*W tokens.

Module names are the official state-dict keys, so official files load without renames:

- ``patch_embed{1..4}.proj`` (Conv3d) and ``.norm`` (LayerNorm eps 1e-5, channels last);
- ``blocks{1,2}.i``: :class:`CBlock` with ``pos_embed``, ``norm1``/``norm2`` (BatchNorm3d),
  ``conv1``, ``attn`` (depthwise 5x5x5), ``conv2``, ``mlp.fc1``/``mlp.fc2`` (1x1x1 convs);
- ``blocks{3,4}.i``: :class:`SABlock` with ``pos_embed``, ``norm1``/``norm2`` (LayerNorm
  eps 1e-6), ``attn.qkv``, ``attn.proj``, ``mlp.fc1``/``mlp.fc2`` (Linear);
- ``norm`` (BatchNorm3d) and ``head`` (Linear).

FFN (Frame Flexible Network) scales the INPUT of every block, before its positional
conv, so the block's identity path is scaled too: ``x * (1 + w_T)``. Every block
therefore carries ``in_channels``, and :data:`UNIFORMER_ADAPTERS` makes
``ff.convert`` wrap each block in an :class:`~frameflex.layers.InputScale`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn

from ._recipe import Recipe
from ._registry import CheckpointRules, register_model

__all__ = ["UniFormer", "CBlock", "SABlock", "PatchEmbed", "UNIFORMER_ADAPTERS", "uniformer_s", "uniformer_b"]

#: FFN's adapter placement (BeSpontaneous/FFN-pytorch ``uniformer_FFN.py``: ``adaconv_T`` at the
#: start of every CBlock and SABlock): the input of each block of the four stages.
UNIFORMER_ADAPTERS = (r"blocks[1-4]\.\d+",)

#: Kinetics statistics on [0, 1] RGB (the official config's DATA.MEAN / DATA.STD).
UNIFORMER_MEAN = (0.45, 0.45, 0.45)
UNIFORMER_STD = (0.225, 0.225, 0.225)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2: Linear layers on tokens (B, N, C), or with ``conv`` 1x1x1 Conv3d on (B, C, T, H, W)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0, conv: bool = False) -> None:
        super().__init__()
        layer = (lambda i, o: nn.Conv3d(i, o, 1)) if conv else nn.Linear
        self.fc1 = layer(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = layer(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head self-attention over all tokens (B, N, C); scale head_dim**-0.5 unless ``qk_scale``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, qk_scale: float | None = None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0,
                                           scale=self.scale)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


def _drop_path(p: float) -> nn.Module:
    return DropPath(p) if p > 0 else nn.Identity()


class CBlock(nn.Module):
    """Convolutional block (stages 1-2): local "attention" is a depthwise 5x5x5 conv; norms are BatchNorm3d."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.in_channels = dim  # where ff.convert puts FFN's adapter: the block's input
        self.pos_embed = nn.Conv3d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm3d(dim)
        self.conv1 = nn.Conv3d(dim, dim, 1)
        self.attn = nn.Conv3d(dim, dim, 5, padding=2, groups=dim)
        self.conv2 = nn.Conv3d(dim, dim, 1)
        self.drop_path = _drop_path(drop_path)
        self.norm2 = nn.BatchNorm3d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, conv=True)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.pos_embed(x)
        x = x + self.drop_path(self.conv2(self.attn(self.conv1(self.norm1(x)))))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SABlock(nn.Module):
    """Self-attention block (stages 3-4): global attention over all T*H*W tokens; norms are LayerNorm eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.in_channels = dim  # where ff.convert puts FFN's adapter: the block's input
        self.pos_embed = nn.Conv3d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = _drop_path(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.pos_embed(x)
        b, c, t, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x.transpose(1, 2).reshape(b, c, t, h, w)


class PatchEmbed(nn.Module):
    """Strided Conv3d + channels-last LayerNorm; the first one also halves T (kernel 3, stride 2, pad 1)."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, temporal_stride: bool = False) -> None:
        super().__init__()
        if temporal_stride:
            self.proj = nn.Conv3d(in_chans, embed_dim, (3, patch_size, patch_size), (2, patch_size, patch_size),
                                  (1, 0, 0))
        else:
            self.proj = nn.Conv3d(in_chans, embed_dim, (1, patch_size, patch_size), (1, patch_size, patch_size))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)
        b, c, t, h, w = x.shape
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3).contiguous()


class UniFormer(nn.Module):
    """Video UniFormer; input (B, C, T, H, W) (H, W at least 32; 224 in the papers), output logits.

    Args:
        depth: blocks per stage, e.g. (3, 4, 8, 3) for UniFormer-S.
        num_classes: rows of ``head``.
        embed_dim: channels per stage.
        head_dim: channels per attention head in stages 3-4.
        drop_path_rate: stochastic depth, growing linearly from 0 over all blocks.

    Example:
        >>> model = UniFormer((1, 1, 1, 1), num_classes=5)
        >>> model(torch.randn(2, 3, 6, 64, 64)).shape  # any T works
        torch.Size([2, 5])
    """

    def __init__(self, depth: Sequence[int], num_classes: int, embed_dim: Sequence[int] = (64, 128, 320, 512),
                 head_dim: int = 64, mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale: float | None = None,
                 in_chans: int = 3, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if len(depth) != 4 or len(embed_dim) != 4:
            raise ValueError(f"depth and embed_dim need 4 stages each, got depth={depth}, embed_dim={embed_dim}")
        for dim in embed_dim[2:]:
            if dim % head_dim:
                raise ValueError(f"attention stage width {dim} is not divisible by head_dim {head_dim}")
        self.num_classes = num_classes
        self.num_features = embed_dim[-1]
        self.patch_embed1 = PatchEmbed(in_chans, embed_dim[0], 4, temporal_stride=True)
        self.patch_embed2 = PatchEmbed(embed_dim[0], embed_dim[1], 2)
        self.patch_embed3 = PatchEmbed(embed_dim[1], embed_dim[2], 2)
        self.patch_embed4 = PatchEmbed(embed_dim[2], embed_dim[3], 2)
        self.pos_drop = nn.Dropout(drop_rate)
        n = sum(depth)
        dpr = [drop_path_rate * i / max(n - 1, 1) for i in range(n)]  # stochastic depth grows linearly
        start = [sum(depth[:s]) for s in range(4)]

        def cblocks(s: int) -> nn.ModuleList:
            return nn.ModuleList(CBlock(embed_dim[s], mlp_ratio, drop_rate, dpr[start[s] + i]) for i in range(depth[s]))

        def sablocks(s: int) -> nn.ModuleList:
            return nn.ModuleList(SABlock(embed_dim[s], embed_dim[s] // head_dim, mlp_ratio, qkv_bias, qk_scale,
                                         drop_rate, attn_drop_rate, dpr[start[s] + i]) for i in range(depth[s]))

        self.blocks1, self.blocks2, self.blocks3, self.blocks4 = cblocks(0), cblocks(1), sablocks(2), sablocks(3)
        self.norm = nn.BatchNorm3d(embed_dim[-1])
        self.head = nn.Linear(embed_dim[-1], num_classes)
        self.apply(_init_weights)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, T, H, W) -> (B, 512, ceil(T/2), H/32, W/32), after the final ``norm``."""
        x = self.pos_drop(self.patch_embed1(x))
        for embed, blocks in ((None, self.blocks1), (self.patch_embed2, self.blocks2),
                              (self.patch_embed3, self.blocks3), (self.patch_embed4, self.blocks4)):
            if embed is not None:
                x = embed(x)
            for block in blocks:
                x = block(x)
        return self.norm(x)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 5:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"UniFormer expects one (B, C, T, H, W) clip, got {shape}")
        return self.head(self.forward_features(x).flatten(2).mean(-1))


def _init_weights(m: nn.Module) -> None:
    # The official init: Linear ~ timm's trunc_normal_(std=0.02), cut at +-2 = 100 std, i.e. a plain
    # normal (drawn 10x faster); unit LayerNorms; convs keep PyTorch's default.
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# registry ----------------------------------------------------------------------------

def _rules(signature: str) -> CheckpointRules:
    # Our keys are the official ones; FFN files add `_T` to private norms (removed by the importer)
    # and hold `blocks1.0.adaconv_8.weight`, the scale of the whole block's input.
    return CheckpointRules(adapter=(r"blocks(\d)\.(\d+)\.adaconv\.weight", r"blocks\1.\2"),
                           head="head.weight", signature=signature)


#: Mixup/cutmix and RandAugment of the official recipe are not part of frameflex train.
UNIFORMER_RECIPE = Recipe(
    "uniformer", "adamw", lr=2e-4, batch_size=32, epochs=60, schedule="cosine", warmup_epochs=5.0, warmup_lr=1e-6,
    min_lr=1e-6, weight_decay=0.05, bias_decay=False, norm_decay=False, label_smoothing=0.1, drop_path=0.2,
    source="FFN-pytorch Transformer_Network/exp/uniformer_s16_sthv1_prek600_FFN run.sh over config.yaml "
           "(ZERO_WD_1D_PARAM, cosine after warm-up); mixup/cutmix and RandAugment left out",
)

_COMMON = dict(frame_sets=(4, 8, 16), adapters=UNIFORMER_ADAPTERS, input_size=224,
               mean=UNIFORMER_MEAN, std=UNIFORMER_STD, recipe=UNIFORMER_RECIPE)

# UniFormer-S keys are a subset of UniFormer-B's (only B has a 5th block in stage 1), so a B file
# matches both signatures; import_checkpoint then keeps the arch the file fits exactly.
_S_SIGNATURE = r"^blocks3\.\d+\.attn\.qkv\.weight$"
_B_SIGNATURE = r"^blocks1\.4\.pos_embed\.weight$"


@register_model("uniformer_s", **_COMMON, published_gmacs={(4, 224): 7.99, (8, 224): 17.62, (16, 224): 41.77},
                checkpoint_rules=_rules(_S_SIGNATURE))
def uniformer_s(num_classes: int, **kwargs) -> UniFormer:
    """UniFormer-S (video): depth (3, 4, 8, 3), 21.4M parameters; FFN's UniFormer backbone.

    ``kwargs`` go to :class:`UniFormer` (e.g. ``drop_path_rate=0.1``, ``drop_rate``, ``in_chans``).
    """
    return UniFormer((3, 4, 8, 3), num_classes, **kwargs)


@register_model("uniformer_b", **_COMMON, published_gmacs={(8, 224): 40.23, (16, 224): 96.74},
                checkpoint_rules=_rules(_B_SIGNATURE))
def uniformer_b(num_classes: int, **kwargs) -> UniFormer:
    """UniFormer-B (video): depth (5, 8, 20, 7), 49.8M parameters.

    ``kwargs`` go to :class:`UniFormer` (e.g. ``drop_path_rate=0.1``, ``drop_rate``, ``in_chans``).
    """
    return UniFormer((5, 8, 20, 7), num_classes, **kwargs)
