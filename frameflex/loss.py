"""FFNLoss: cross-entropy on the largest frame count, distillation to the others."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from ._outputs import logits_of
from .errors import ArgumentError

__all__ = ["FFNLoss"]


class FFNLoss(nn.Module):
    """``CE(z_H, y) + kl_weight * sum_T KL(softmax(z_H).detach() || softmax(z_T))``.

    ``H`` is the largest frame count in the outputs; only it sees the labels, the
    others learn from its (detached) prediction, as in FFN (CVPR 2023).
    KL uses ``reduction='batchmean'``; with ``temperature`` t != 1 both sides are
    softened by t and the KL is scaled by t**2 (Hinton et al.). Targets may be class
    indices or soft (mixup) probabilities. After a call, ``parts`` holds detached
    tensors for logging: ``{"ce": ..., "kl_4": ..., "kl_8": ...}``.

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16])
    >>> loss_fn = ff.FFNLoss()
    >>> loss = loss_fn(ff.forward_multi(model, {t: torch.randn(2, 3, t, 32, 32) for t in (4, 8, 16)}),
    ...                torch.tensor([0, 3]))
    >>> loss.backward()
    >>> sorted(loss_fn.parts)
    ['ce', 'kl_4', 'kl_8']
    """

    def __init__(self, kl_weight: float = 1.0, temperature: float = 1.0, label_smoothing: float = 0.0):
        super().__init__()
        self.kl_weight = float(_checks.nonnegative(kl_weight, "FFNLoss kl_weight"))
        self.temperature = float(_checks.nonnegative(temperature, "FFNLoss temperature"))
        if self.temperature == 0:
            raise ArgumentError("FFNLoss temperature must be > 0, got 0")
        self.label_smoothing = float(_checks.probability(label_smoothing, "FFNLoss label_smoothing"))
        self.parts: dict[str, torch.Tensor] = {}

    def forward(self, outputs: Mapping[int, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        if not isinstance(outputs, Mapping) or not outputs:
            raise ArgumentError("FFNLoss expects a non-empty dict {frame_count: logits}, as ff.forward_multi returns")
        for t in outputs:  # '8' > '16' as strings: the teacher would be the wrong branch
            _checks.frame_count(t, "FFNLoss: a key of outputs (the frame count)")
        outputs = {t: logits_of(z) for t, z in outputs.items()}
        high = max(outputs)
        teacher = outputs[high]
        for t, z in outputs.items():
            if z.shape != teacher.shape:
                raise ArgumentError(f"logits for {t} frames have shape {tuple(z.shape)}, "
                                 f"but {high} frames gave {tuple(teacher.shape)}")
        ce = F.cross_entropy(teacher, target, label_smoothing=self.label_smoothing)
        parts = {"ce": ce}
        total = ce
        if len(outputs) > 1:
            tau = self.temperature
            soft = F.softmax(teacher.detach() / tau, dim=-1)
            for t in sorted(outputs):
                if t == high:
                    continue
                kl = F.kl_div(F.log_softmax(outputs[t] / tau, dim=-1), soft, reduction="batchmean") * tau**2
                parts[f"kl_{t}"] = kl
                total = total + self.kl_weight * kl
        if not torch.isfinite(total):  # one check per step; then find the culprit
            bad = [f"logits for {t} frames" for t in sorted(outputs) if not torch.isfinite(outputs[t]).all()]
            if target.is_floating_point() and not torch.isfinite(target).all():
                bad.append("the target")
            raise ArgumentError(f"FFNLoss: the loss is {total.item()}: "
                             + (f"NaN or inf in {' and '.join(bad)}" if bad else
                                "the logits overflow in the softmax (lower the learning rate)"))
        self.parts = {k: v.detach() for k, v in parts.items()}
        return total

    def extra_repr(self) -> str:
        return f"kl_weight={self.kl_weight}, temperature={self.temperature}"
