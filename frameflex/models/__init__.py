"""Video models built for frameflex (each family in its own file)."""

from frameflex.models.tsm import TSM, TemporalShift, tsm_tiny

__all__ = ["TSM", "TemporalShift", "tsm_tiny"]
