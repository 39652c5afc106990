"""Training: the Lightning module, run configs, `epic-ar train`'s and `epic-ar test`'s jobs.

Importing this package changes no warnings filter and no logger: the commands that run
Lightning call `epic_ar.training.logging_setup.quiet_lightning` themselves.
"""

from epic_ar.training.logging_setup import quiet_lightning
from epic_ar.training.run_config import RunConfig, parse_run_config
from epic_ar.training.system import ActionRecognitionSystem
from epic_ar.training.train import train

__all__ = [
    "ActionRecognitionSystem",
    "RunConfig",
    "parse_run_config",
    "quiet_lightning",
    "train",
]
