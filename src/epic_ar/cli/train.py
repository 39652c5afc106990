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

from epic_ar.cli.main import command_flags, error_message, one_line_error
from epic_ar.errors import EpicArError

_COMMAND_LINE: list[str] = []  # sys.argv as the user gave it (with `train`)
_EXISTING_FOLDERS: list[Path] = []  # hydra.run.dir and its parent, if there before the run
# library parameter -> flag, for `command_flags`: Hydra parses these, not argparse
FLAGS = {"config_name": "--config-name"}
EXIT_INTERRUPTED = 130


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def _train_main(config: DictConfig) -> None:
    from epic_ar.training.logging_setup import quiet_lightning
    from epic_ar.training.run_config import plain_run_config
    from epic_ar.training.train import (
        TrainingInterrupted,
        interruption_message,
        remove_unused_run_dir,
        summary_lines,
        train,
    )

    # Lightning's DDP launcher starts the other processes with this process's sys.argv.
    sys.argv = list(_COMMAND_LINE)
    quiet_lightning()  # its messages go through Hydra's handlers
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        result = train(plain_run_config(config), run_dir)
    except (EpicArError, OSError) as exc:
        # A run that failed before writing a checkpoint leaves nothing behind.
        remove_unused_run_dir(run_dir, _EXISTING_FOLDERS)
        message = one_line_error(exc, command_flags("train"))
        if message is None:
            raise
        print(f"epic-ar train: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt as exc:
        remove_unused_run_dir(run_dir, _EXISTING_FOLDERS)
        if not isinstance(exc, TrainingInterrupted) or exc.writer:  # DDP: print once
            print(f"epic-ar train: {interruption_message(exc, run_dir)}", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception:
        remove_unused_run_dir(run_dir, _EXISTING_FOLDERS)
        raise
    if result.already_complete is not None:
        remove_unused_run_dir(run_dir, _EXISTING_FOLDERS)  # a run folder Hydra has just made
    if result.writer:  # DDP: print once
        print("\n".join(summary_lines(result)))


def _chosen_config(arguments: Sequence[str]) -> tuple[str | None, bool] | None:
    """(the --config-name given, whether a config folder of the user's is searched too),
    from Hydra's own parsing of `arguments`; None for a request that composes no run
    (--help, --hydra-help, --info, shell completion)."""
    from hydra._internal.utils import get_args_parser

    args, _ = get_args_parser().parse_known_args(list(arguments))
    if args.help or args.hydra_help or args.info or args.shell_completion:
        return None
    searched = any(a.lstrip("+~").startswith("hydra.searchpath=") for a in args.overrides)
    own_configs = args.config_path is not None or args.config_dir is not None or searched
    return args.config_name, own_configs


def _existing_run_folders(arguments: Sequence[str]) -> list[Path]:
    """The folders of a `hydra.run.dir=DIR` override that exist already (DIR and its parent):
    a failed start must not remove them, even empty."""
    given = [a.split("=", 1)[1] for a in arguments if a.startswith("hydra.run.dir=")]
    if not given:
        return []
    folder = Path(given[-1].strip("'\"")).absolute()
    return [path for path in (folder, folder.parent) if path.is_dir()]


def run_hydra(arguments: Sequence[str]) -> int:
    """Run `epic-ar train` with `arguments` (those after `train`)."""
    from epic_ar.configs.names import check_config_name

    chosen = _chosen_config(arguments)
    if chosen is not None and not chosen[1]:  # the packaged configs only
        try:
            check_config_name(chosen[0])
        except EpicArError as exc:
            print(f"epic-ar train: error: {error_message(exc, FLAGS)}", file=sys.stderr)
            return 1
    _EXISTING_FOLDERS[:] = _existing_run_folders(arguments)
    saved = sys.argv
    _COMMAND_LINE[:] = [saved[0], "train", *arguments]
    sys.argv = [sys.argv[0], *arguments]
    try:
        _train_main()
    except KeyboardInterrupt:  # while Hydra composed the config or torch was imported
        print("epic-ar train: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.argv = saved
    return 0
