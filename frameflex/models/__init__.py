"""Video models built for frameflex (each family in its own file)."""

from ._registry import CheckpointRules, ModelSpec, create_model, get_spec, list_models, register_model
from .tsm import TSM, TemporalShift, tsm_tiny

__all__ = ["TSM", "TemporalShift", "tsm_tiny", "ModelSpec", "CheckpointRules", "get_spec", "create_model",
           "list_models", "register_model"]
