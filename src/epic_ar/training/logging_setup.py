"""What the commands that run Lightning set up before they start: quieter warnings and logs.

Importing `epic_ar.training` changes nothing in the process; a command (`epic-ar train`,
`epic-ar test`) calls `quiet_lightning` once Lightning is imported.
"""

from __future__ import annotations

import logging
import warnings

# Lightning 2.6 with torch >= 2.10 warns about its own use of a torch API, at every step.
LIGHTNING_TREESPEC_WARNING = r".*isinstance\(treespec, LeafSpec\)"
# Partial BN (`model.partial_bn`, as the original) keeps BatchNorm layers in eval mode while
# training, on purpose; Lightning warns about such modules at the start of every fit.
LIGHTNING_EVAL_MODE_WARNING = r"Found \d+ module\(s\) in eval mode at the start of training"
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


# Lightning's note on Ctrl-C: the command says "epic-ar <command>: interrupted" itself
# (`epic_ar.training.interrupts`)
LIGHTNING_INTERRUPT_NOTE = "Detected KeyboardInterrupt"


def _not_an_advert(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    return "litlogger" not in message and LIGHTNING_INTERRUPT_NOTE not in message


def _route_lightning_logs() -> None:
    """Send Lightning's messages through the application's logging set-up only: Lightning
    adds its own console handler at import, so each message showed twice. Its advert for a
    cloud logging service and its note on Ctrl-C are dropped."""
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _not_an_advert not in logger.filters:
            logger.addFilter(_not_an_advert)


def quiet_lightning() -> None:
    """Drop Lightning's warnings about its own torch use and about partial BN's eval-mode
    layers, and route its logs through the application's logging set-up. Call it after
    Lightning is imported (it adds its handler then)."""
    warnings.filterwarnings("ignore", message=LIGHTNING_TREESPEC_WARNING)
    warnings.filterwarnings("ignore", message=LIGHTNING_EVAL_MODE_WARNING)
    _route_lightning_logs()
