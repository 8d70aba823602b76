"""Temporal helpers shared by the model families (TSM, TEA): the per-frame forward and the clip's T."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from torch import Tensor, nn

__all__ = ["clip_frames", "PerFrameModel"]


@contextlib.contextmanager
def clip_frames(modules: Iterable[nn.Module], num_frames: int) -> Iterator[None]:
    """Give every temporal module (``num_frames`` attribute) the clip's T for one forward, then None.

    Taken back even on error, so no segment count survives a call and every call (and
    every FFN branch) uses its own T. Used by :class:`PerFrameModel`.

    Example:
        >>> from frameflex.models.tsm import TemporalShift
        >>> shift = TemporalShift(nn.Identity())
        >>> with clip_frames([shift], 4):
        ...     y = shift(torch.randn(8, 8, 1, 1))
        >>> shift.num_frames is None
        True
    """
    modules = list(modules)
    for m in modules:
        m.num_frames = num_frames
    try:
        yield
    finally:
        for m in modules:
            m.num_frames = None


class PerFrameModel(nn.Module):
    """TSN-style forward shared by TSM and TEA: the 2D ``backbone`` sees (B*T, C, H, W), the
    per-frame ``fc`` logits are averaged over T. Subclasses set ``backbone``, ``dropout``, ``fc``
    and name their T-dependent modules in ``temporal_modules()``.
    """

    def temporal_modules(self) -> Iterator[nn.Module]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"{type(self).__name__} expects a (B, C, T, H, W) clip, got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        with clip_frames(self.temporal_modules(), t):
            feats = self.backbone(frames)
        logits = self.fc(self.dropout(feats))
        return logits.view(b, t, -1).mean(dim=1)
