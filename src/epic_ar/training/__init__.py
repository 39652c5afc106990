"""Training: the Lightning module, run configs, `epic-ar train`'s and `epic-ar test`'s jobs."""

import logging
import warnings

from epic_ar.training.run_config import RunConfig, parse_run_config
from epic_ar.training.system import ActionRecognitionSystem
from epic_ar.training.train import train

# Lightning 2.6 with torch >= 2.10 warns about its own use of a torch API, at every step.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def _not_an_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in str(record.msg)


def route_lightning_logs() -> None:
    """Send Lightning's messages through the application's logging set-up only: Lightning
    adds its own console handler at import, so each message showed twice. Its advert for a
    cloud logging service is dropped."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if _not_an_advert not in logger.filters:
            logger.addFilter(_not_an_advert)


route_lightning_logs()

__all__ = [
    "ActionRecognitionSystem",
    "RunConfig",
    "parse_run_config",
    "route_lightning_logs",
    "train",
]
