"""The packaged model configs' names (`src/epic_ar/configs/NAME.yaml`), for `epic-ar train
--config-name NAME`: checked before Hydra composes anything (this module imports no torch,
so a wrong name fails at once).
"""

from __future__ import annotations

import difflib

from epic_ar.errors import EpicArError, Parameter

# src/epic_ar/configs/NAME.yaml (train.yaml only holds the help text)
RUN_CONFIGS = ("tsn_rgb", "tsn_flow", "trn_rgb", "trn_flow", "tsm_rgb", "tsm_flow")
CONFIG_NAME = Parameter("config_name")  # Hydra's parameter: which packaged config to compose


def no_run_config() -> EpicArError:
    """The error for a run without a model config."""
    return EpicArError(
        "no run config: choose one with ", CONFIG_NAME, " (" + ", ".join(RUN_CONFIGS) + ")"
    )


def check_config_name(name: str | None) -> None:
    """Refuse a run without a model config (Hydra would only say that the first override's
    key is not in its config) or naming one that is not packaged, with the names that are
    (and the closest one)."""
    if name is None:
        raise no_run_config()
    stem = name.removesuffix(".yaml")
    if stem in RUN_CONFIGS:
        return
    close = difflib.get_close_matches(stem, RUN_CONFIGS, n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    raise EpicArError(
        CONFIG_NAME,
        f" {name}: not a packaged config{guess}; choose one of " + ", ".join(RUN_CONFIGS),
    )
