"""A training recipe as numbers: each family file states its official one next to its builders."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    """One official training recipe (``source`` says where the numbers come from).

    ``lr`` is the peak learning rate for ``batch_size`` videos per optimizer step
    over all processes; ``frameflex train`` scales it linearly with the real total
    batch unless ``--lr`` is given. ``warmup_lr`` and ``min_lr`` scale with it.

    Example:
        >>> Recipe("tsm", "sgd", lr=0.01, batch_size=32, epochs=50, schedule="step", lr_steps=(20, 40)).lr_steps
        (20, 40)
    """

    name: str  # what --recipe calls it
    optimizer: str  # "sgd" or "adamw"
    lr: float
    batch_size: int
    epochs: int
    schedule: str  # "step": x0.1 at each epoch in lr_steps; "cosine": down to min_lr after the warm-up
    lr_steps: tuple[int, ...] = ()
    warmup_epochs: float = 0.0  # linear from warmup_lr to the schedule's value at its end
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    bias_lr_mult: float = 1.0
    bias_decay: bool = True  # weight decay on biases
    norm_decay: bool = True  # weight decay on norm weights and biases
    head_lr_mult: float = 1.0  # the classifier (the model's last nn.Linear): a new layer learns faster
    head_bias_lr_mult: float = 1.0
    clip_grad: float | None = None  # max L2 norm of all gradients together
    label_smoothing: float = 0.0
    dropout: float | None = None  # builder argument `dropout` (before the classifier)
    drop_path: float | None = None  # builder argument `drop_path_rate`
    source: str = ""
