"""The published FFN checkpoints and their base models, with the numbers the paper reports.

The authors host the files on Google Drive (ids below), not on a model hub. ``hub_repo``
is the name each is meant to be published under once someone runs
``frameflex import`` + ``frameflex push`` on it: until then those repos do not exist.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import ArgumentError

__all__ = ["CheckpointEntry", "CATALOGUE", "catalogue_table", "card_fields"]

_DATASETS = {"sthv1": ("something-something-v1", 174), "sthv2": ("something-something-v2", 174),
             "k400": ("kinetics-400", 400)}


@dataclass(frozen=True)
class CheckpointEntry:
    arch: str
    dataset: str  # short name: sthv1, sthv2, k400
    ffn: bool  # one FFN model for all frame counts, or a base model trained at the highest only
    frame_sets: tuple[int, ...]  # L/M/H it was evaluated at
    top1: tuple[float, float, float]  # reported top-1 (%) at L/M/H
    drive_id: str
    views: str = "1 clip x 1 centre crop"  # the test protocol of `top1` (`frameflex eval --clips/--crops`)

    @property
    def num_classes(self) -> int:
        return _DATASETS[self.dataset][1]

    @property
    def dataset_name(self) -> str:
        return _DATASETS[self.dataset][0]

    @property
    def hub_repo(self) -> str:
        kind = "ffn" if self.ffn else f"{self.frame_sets[-1]}f"
        return f"frameflex/{self.arch}-{kind}-{self.dataset}"

    @property
    def source(self) -> str:
        return f"https://drive.google.com/file/d/{self.drive_id}"

    def as_dict(self) -> dict:
        return {**asdict(self), "num_classes": self.num_classes, "hub_repo": self.hub_repo, "source": self.source}


# The FFN paper's published results (arXiv 2303.14817) and its released files (base = trained at H only).
CATALOGUE: tuple[CheckpointEntry, ...] = (
    CheckpointEntry("tsm_r50", "sthv1", True, (4, 8, 16), (42.85, 48.20, 50.79), "1_UhRmFoed58XPTqs8evqZspYEGLNWYdv"),
    CheckpointEntry("tsm_r50", "sthv1", False, (4, 8, 16), (20.60, 37.36, 48.55), "1CVXl_qKiTB8iaqz4UyErxdNpG2XwZlPH"),
    CheckpointEntry("tea_r50", "sthv1", True, (4, 8, 16), (44.97, 51.61, 54.04), "1svAKVJRIEL0bRsgVP9ZOx6n-Yd5tKaYt"),
    CheckpointEntry("tea_r50", "sthv1", False, (4, 8, 16), (21.78, 41.49, 51.23), "1pfOgZXR5N5hRy14Ub7FyzBq-BIWFWnBO"),
    CheckpointEntry("slowfast_r50", "sthv1", True, (16, 32, 64), (43.90, 47.11, 47.27),
                    "17zZ_tyAPNx9mz_qu0whhhjlqalElVexS", "1 clip x 1 centre crop, 256 px"),
    CheckpointEntry("slowfast_r50", "sthv1", False, (16, 32, 64), (15.08, 35.08, 45.88),
                    "1WW6nirUmVK7AL9EmlkDw8eOWG4wSJlds", "1 clip x 1 centre crop, 256 px"),
    CheckpointEntry("uniformer_s", "sthv1", True, (4, 8, 16), (51.41, 56.64, 58.88), "1ZlBBEgMA5CJsJCbVfht9ytqY-oD7jEEo",
                    "1 clip x 3 crops"),
    CheckpointEntry("uniformer_s", "sthv1", False, (4, 8, 16), (22.38, 47.98, 56.71), "1r68Z9iUUQDcrpZYdq7kYGd7jflStjD0t",
                    "1 clip x 3 crops"),
    CheckpointEntry("tsm_r50", "sthv2", True, (4, 8, 16), (56.07, 61.86, 63.61), "1lmKFR-5sO86A1ge7JkWzY0nXkE0it4wo"),
    CheckpointEntry("tsm_r50", "sthv2", False, (4, 8, 16), (31.52, 51.55, 61.02), "1S8XQ66oUIp2PEGpD81j_Y-gq0cEV3VwF"),
    CheckpointEntry("tsm_r50", "k400", True, (4, 8, 16), (68.96, 72.33, 74.35), "17SaTXHI_7bgw1-aT2mpE78rX44hHQ5EL"),
    CheckpointEntry("tsm_r50", "k400", False, (4, 8, 16), (64.10, 69.77, 73.16), "1g9uyLpPyg0s3AOHsMNBM0G8MhhN1Nx41"),
)


def find_entry(arch: str, dataset: str | None = None, ffn: bool | None = None) -> CheckpointEntry | None:
    """The catalogue entry matching an imported file, if exactly one does."""
    hits = [e for e in CATALOGUE if e.arch == arch and dataset in (None, e.dataset) and ffn in (None, e.ffn)]
    return hits[0] if len(hits) == 1 else None


def card_fields(arch: str, dataset: str, num_classes: int, frame_sets: tuple[int, ...] | None) -> dict:
    """Model-card fields for a checkpoint trained on the catalogue's ``dataset`` (sthv1, sthv2, k400).

    The dataset must fit the checkpoint's class count; the paper's reported results are
    added when the catalogue has this arch, kind (FFN or not) and frame set.

    >>> card_fields("tsm_r50", "sthv1", 174, (4, 8, 16))["results"]["top1"]
    {'4': 42.85, '8': 48.2, '16': 50.79}
    """
    if dataset not in _DATASETS:
        raise ArgumentError(f"unknown dataset {dataset!r}; the catalogue's datasets are {', '.join(_DATASETS)}")
    name, classes = _DATASETS[dataset]
    if num_classes != classes:
        raise ArgumentError(f"dataset {dataset} ({name}) has {classes} classes, but the checkpoint has {num_classes}: "
                            f"it was not trained on {name}")
    fields: dict = {"dataset": name}
    entry = find_entry(arch, dataset, ffn=frame_sets is not None)
    if entry is not None and (frame_sets is None or tuple(frame_sets) == entry.frame_sets):
        fields["source"] = entry.source
        fields["results"] = {"top1": {str(t): a for t, a in zip(entry.frame_sets, entry.top1)}, "reported": True,
                             "note": "Top-1 as reported in the FFN paper (CVPR 2023), not re-measured."}
    return fields


def catalogue_table() -> str:
    """The catalogue as a markdown table (``frameflex models`` and the README print it)."""
    rows = ["| arch | dataset | classes | kind | frames L/M/H | reported top-1 L / M / H | test views "
            "| Hub repo (once published) | original file |", "|---|---|---|---|---|---|---|---|---|"]
    for e in CATALOGUE:
        kind = "FFN (one model)" if e.ffn else f"trained at {e.frame_sets[-1]} only"
        rows.append(f"| {e.arch} | {e.dataset_name} | {e.num_classes} | {kind} | {'/'.join(map(str, e.frame_sets))} "
                    f"| {' / '.join(f'{a:.2f}' for a in e.top1)} | {e.views} | `{e.hub_repo}` | [Drive]({e.source}) |")
    return "\n".join(rows)
