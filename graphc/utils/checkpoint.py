"""graphc.utils.checkpoint: activation checkpointing (graphc keeps the activations; same results)."""
from graphc.compat_extras import checkpoint, checkpoint_sequential  # noqa: F401

__all__ = ["checkpoint", "checkpoint_sequential"]
