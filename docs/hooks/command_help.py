"""MkDocs hook: each `<!-- epic-ar-help: COMMAND -->` line of a page becomes a fenced block
holding that command's `--help` text, made from the command's parser when the site is built.

The command's module is looked up in `epic_ar.cli.main.COMMANDS`, so the reference follows
the code wherever a module moves. A command whose module has no `add_parser` (`train`, whose
command line is Hydra's) is run as `python -m epic_ar COMMAND --help` instead. The build fails
on a marker naming an unknown command, and on a command that no page documents.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!-- epic-ar-help: (?P<command>[\w-]+) -->[ \t]*$", re.MULTILINE)
# Help text is wrapped to the terminal width: a fixed one makes the pages reproducible.
COLUMNS = "100"

_documented: set[str] = set()


@contextmanager
def _terminal_columns(columns: str) -> Iterator[None]:
    """Set COLUMNS (read by argparse's formatter) for the duration of the block."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = columns
    try:
        yield
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _commands() -> dict[str, tuple[str, str]]:
    """`epic_ar.cli.main.COMMANDS`: command name -> (module name, one-line help)."""
    from epic_ar.cli.main import COMMANDS

    return COMMANDS


def _run_help(command: str) -> str:
    """The help that `epic-ar COMMAND --help` prints, from a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-m", "epic_ar", command, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": COLUMNS},
        check=False,
    )
    if completed.returncode != 0:
        raise PluginError(
            f"epic-ar {command} --help exited with status {completed.returncode}: "
            f"{completed.stderr.strip()}"
        )
    return completed.stdout


def command_help(command: str) -> str:
    """The `--help` text of `epic-ar COMMAND`, as the command prints it."""
    commands = _commands()
    if command not in commands:
        raise PluginError(
            f"<!-- epic-ar-help: {command} -->: no such command; the commands are "
            f"{', '.join(commands)}"
        )
    from epic_ar.cli.main import command_parser

    if not hasattr(importlib.import_module(commands[command][0]), "add_parser"):
        return _run_help(command)
    with _terminal_columns(COLUMNS):
        return command_parser(command).format_help()


def _help_block(match: re.Match[str]) -> str:
    command = match.group("command")
    _documented.add(command)
    return f"```text\n{command_help(command).rstrip()}\n```"


def on_pre_build(config: Any) -> None:
    _documented.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return MARKER.sub(_help_block, markdown)


def on_post_build(config: Any) -> None:
    missing = [command for command in _commands() if command not in _documented]
    if missing:
        raise PluginError(
            f"no page has an <!-- epic-ar-help: ... --> marker for {', '.join(missing)}"
        )
