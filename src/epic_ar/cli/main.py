"""`epic-ar` entry point: one subcommand per job; user errors print one line, exit 1."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TextIO

from epic_ar import __version__
from epic_ar.errors import EpicArError, FlagOf, MessageException

# name -> (module, one-line help). Only the module of the command being run is imported, so
# `epic-ar --help` and the commands that need no torch start in a fraction of a second.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": (
        "epic_ar.cli.synth",
        "generate a small synthetic dataset shaped like EPIC-KITCHENS-100",
    ),
    "gulp": ("epic_ar.cli.gulp", "store the frames of annotated segments in a gulp directory"),
    "gulp-check": ("epic_ar.cli.gulp_check", "verify every chunk of a gulp directory"),
    "convert-flow-idxs": (
        "epic_ar.cli.convert_flow_idxs",
        "convert the frame numbers of an annotation file from RGB to optical flow",
    ),
    "train": ("epic_ar.cli.train", "train a model (Hydra overrides; see epic-ar train --help)"),
    "test": (
        "epic_ar.cli.test",
        "score the val or test split with a checkpoint (ours or published)",
    ),
    "fuse": (
        "epic_ar.cli.fuse",
        "fuse results files (e.g. RGB and flow) by averaging their scores",
    ),
    "evaluate": (
        "epic_ar.cli.evaluate",
        "compute the official verb/noun/action, tail and unseen accuracies",
    ),
    "submit": (
        "epic_ar.cli.submit",
        "write a challenge submission zip (test.json) from a results file",
    ),
    "synthetic-results": (
        "epic_ar.cli.synthetic_results",
        "write a results file of synthetic scores for the segments of an annotation file",
    ),
    "show": (
        "epic_ar.cli.show",
        "draw segments (contact sheet PNG, or one segment as GIF/MP4) to check the data",
    ),
    "predict": (
        "epic_ar.cli.predict",
        "run a model on any video: top verbs, nouns and actions in windows over time",
    ),
    "features": (
        "epic_ar.cli.features",
        "write features for anticipation / detection models (RULSTM LMDB, ActionFormer npz)",
    ),
    "export": (
        "epic_ar.cli.export",
        "write a model as ONNX, checked against PyTorch with ONNX Runtime",
    ),
    "download": ("epic_ar.cli.download", "download a published TSN/TRN/TSM checkpoint"),
    "demo": (
        "epic_ar.cli.demo",
        "run the whole pipeline on generated data: synth, gulp, show, train, test, fuse, "
        "evaluate, submit",
    ),
}
EXIT_ERROR = 1


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line, with the full arguments of `command` only (the others are listed
    for --help; their modules are not imported). A command whose module has no `add_parser`
    (train: Hydra parses its command line) is only listed."""
    parser = argparse.ArgumentParser(
        prog="epic-ar",
        allow_abbrev=False,
        description="Train, test, evaluate and submit action recognition models on "
        "EPIC-KITCHENS-100.",
    )
    parser.add_argument("--version", action="version", version=f"epic-ar {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name) if name == command else None
        add_parser = getattr(module, "add_parser", None)
        if add_parser is not None:
            add_parser(subparsers, help_text)
        else:
            subparsers.add_parser(name, help=help_text)
    for subparser in subparsers.choices.values():
        # `--frames` must not pass for `--frames-dir`: a misspelt flag is an error, not a guess
        subparser.allow_abbrev = False
    return parser


def command_parser(
    command: str, parser: argparse.ArgumentParser | None = None
) -> argparse.ArgumentParser:
    """The parser of `epic-ar COMMAND` within `parser` (default: `build_parser(command)`,
    which holds its full arguments; for train, whose command line is Hydra's, the bare
    entry that lists it)."""
    parser = parser or build_parser(command)
    # argparse keeps its subcommands in a private action only
    subparsers = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    parsers: dict[str, argparse.ArgumentParser] = subparsers.choices
    return parsers[command]


def parse_arguments(arguments: list[str], command: str | None) -> argparse.Namespace:
    """The parsed command line; arguments the command does not know are the command's usage
    error (`epic-ar test: error: unrecognized arguments: ...`), not the top level's."""
    parser = build_parser(command)
    args, unknown = parser.parse_known_args(arguments)
    if unknown:
        command_parser(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def command_flags(command: str) -> dict[str, str]:
    """How `epic-ar COMMAND` names each library parameter it sets, by parameter: the long
    flag of each optional argument, by its argparse dest (e.g. {"force": "--force",
    "workers": "--workers"}), and the entries of the command module's `FLAGS` for flags
    argparse does not parse (train's Hydra options)."""
    flags: dict[str, str] = {}
    for action in command_parser(command)._actions:
        long_flags = [flag for flag in action.option_strings if flag.startswith("--")]
        if long_flags and action.dest != argparse.SUPPRESS:
            flags.setdefault(action.dest, long_flags[0])
    flags.update(getattr(importlib.import_module(COMMANDS[command][0]), "FLAGS", {}))
    return flags


def error_message(exc: EpicArError, flags: Mapping[str, str]) -> str:
    """The message of `exc` for the command line: where the library names a parameter
    (e.g. "pass force=True"), the command's flag from `flags` (see `command_flags`) if it
    has one."""
    return exc.text.render(flags.get)


def os_error_message(exc: OSError) -> str:
    """An OSError about a path as one line: the path(s), then the system's reason."""
    names = os.fsdecode(exc.filename)
    if exc.filename2 is not None:
        names += f" -> {os.fsdecode(exc.filename2)}"
    return f"{names}: {exc.strerror or exc}"


def one_line_error(exc: BaseException, flags: Mapping[str, str]) -> str | None:
    """The one-line message for a mistake the user can fix (an EpicArError, an OSError about
    a path); None for anything else, which is a bug and keeps its traceback. `flags`: the
    command's, see `command_flags`."""
    if isinstance(exc, EpicArError):
        return worker_error_line(error_message(exc, flags))
    if isinstance(exc, OSError) and exc.filename is not None:
        return os_error_message(exc)
    return None


def worker_error_line(message: str) -> str:
    """`message` itself, or for an error raised in a DataLoader worker (which torch raises
    again in the main process as the worker's whole traceback) the worker's own message,
    from the traceback's last line."""
    if "\nOriginal Traceback" not in message:
        return message
    last = message.strip().splitlines()[-1]
    name, separator, text = last.partition(": ")
    return text if separator and name.endswith("Error") else last


@contextlib.contextmanager
def warnings_naming_flags(flag_of: FlagOf) -> Iterator[None]:
    """Within the block, a library warning that names a parameter (a `MessageException`,
    e.g. "loading with trust=True runs ...") is shown naming the command's flag
    instead ("--trust", see `command_flags`), under the builtin category it derives from
    (e.g. UserWarning)."""
    with warnings.catch_warnings():  # puts `warnings.showwarning` back afterwards
        show = warnings.showwarning

        def show_naming_flags(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if isinstance(message, MessageException):
                message = message.text.render(flag_of)
                category = next(c for c in category.__mro__ if c.__module__ == "builtins")
            show(message, category, filename, lineno, file, line)

        warnings.showwarning = show_naming_flags
        yield


def _reader_went_away() -> int:
    """Stop quietly when the reader of stdout has gone (`epic-ar evaluate ... | head`), as
    Unix tools do: exit status 141 (128 + SIGPIPE)."""
    # Python's own flush of stdout at exit would fail again: point stdout at /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["train"]:  # Hydra parses its own command line
        from epic_ar.cli import train

        return train.run_hydra(arguments[1:])
    command = arguments[0] if arguments and arguments[0] in COMMANDS else None
    args = parse_arguments(arguments, command)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        # a warning naming a parameter names the flag; the parser is rebuilt only for one
        with warnings_naming_flags(lambda parameter: command_flags(args.command).get(parameter)):
            return int(args.run(args))
    except BrokenPipeError:
        return _reader_went_away()
    except (EpicArError, OSError) as exc:
        message = one_line_error(exc, command_flags(args.command))
        if message is None:
            raise
        print(f"epic-ar {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"epic-ar {args.command}: interrupted", file=sys.stderr)
        return 130
