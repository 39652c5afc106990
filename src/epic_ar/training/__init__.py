"""Training: the Lightning module, run configs, `epic-ar train`'s and `epic-ar test`'s jobs."""

import warnings

from epic_ar.training.run_config import RunConfig, parse_run_config
from epic_ar.training.system import ActionRecognitionSystem
from epic_ar.training.train import train

# Lightning 2.6 with torch >= 2.10 warns about its own use of a torch API, at every step.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")

__all__ = ["ActionRecognitionSystem", "RunConfig", "parse_run_config", "train"]
