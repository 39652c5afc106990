"""Training: the Lightning module, run configs and `epic-ar train`'s job."""

from epic_ar.training.run_config import RunConfig, parse_run_config
from epic_ar.training.system import ActionRecognitionSystem
from epic_ar.training.train import train

__all__ = ["ActionRecognitionSystem", "RunConfig", "parse_run_config", "train"]
