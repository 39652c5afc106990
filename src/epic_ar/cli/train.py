"""`epic-ar train [HYDRA ARGS]`: Hydra's own command line over the packaged configs.

Everything after `train` goes to a `@hydra.main` entry point, so Hydra's options work as
usual (`--config-name`, `key=value`, `+trainer.<kwarg>=...`, `-m` sweeps, `--cfg job`,
`hydra.run.dir=...`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from epic_ar.cli.main import command_flags, one_line_error
from epic_ar.errors import EpicArError

_COMMAND_LINE: list[str] = []  # sys.argv as the user gave it (with `train`)
# library parameter -> flag, for `command_flags`: Hydra parses these, not argparse
FLAGS = {"config_name": "--config-name"}


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def _train_main(config: DictConfig) -> None:
    from epic_ar.training.logging_setup import quiet_lightning
    from epic_ar.training.run_config import plain_run_config
    from epic_ar.training.train import remove_unused_run_dir, summary_lines, train

    # Lightning's DDP launcher starts the other processes with this process's sys.argv.
    sys.argv = list(_COMMAND_LINE)
    quiet_lightning()  # its messages go through Hydra's handlers
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        result = train(plain_run_config(config), run_dir)
    except (EpicArError, OSError) as exc:
        # A run that failed before writing a checkpoint leaves nothing behind.
        remove_unused_run_dir(run_dir)
        message = one_line_error(exc, command_flags("train"))
        if message is None:
            raise
        print(f"epic-ar train: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception:
        remove_unused_run_dir(run_dir)
        raise
    if result.writer:  # DDP: print once
        print("\n".join(summary_lines(result)))


def run_hydra(arguments: Sequence[str]) -> int:
    """Run `epic-ar train` with `arguments` (those after `train`)."""
    saved = sys.argv
    _COMMAND_LINE[:] = [saved[0], "train", *arguments]
    sys.argv = [sys.argv[0], *arguments]
    try:
        _train_main()
    finally:
        sys.argv = saved
    return 0
