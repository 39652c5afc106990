"""TSN, multi-scale TRN and TSM models; loading published checkpoints."""

from epic_ar.models.checkpoint import load_checkpoint
from epic_ar.models.config import ModelConfig
from epic_ar.models.video_model import InputSpec, VideoModel, build_model, parameter_groups

__all__ = [
    "InputSpec",
    "ModelConfig",
    "VideoModel",
    "build_model",
    "load_checkpoint",
    "parameter_groups",
]
